"""Predictive models and scores in the database.

Models (a few rows, each with its skops artefact) are read and written through a unit of work's
connection (SQLAlchemy Core); the scores of every contact are replaced set-based through a
:class:`~leadscore.store.bulk.BulkSession` in the transaction that computed them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import Connection, func, select, update

from leadscore.store.adbc import AdbcWriter
from leadscore.store.records import load_json
from leadscore.store.tables import predictive_models, predictive_scores

ACTIVE, INACTIVE = "active", "inactive"
SCORE_SCHEMA: dict[str, pl.DataType] = {
    "contact_id": pl.Int64(), "model_version": pl.Int32(), "probability": pl.Float64(), "score": pl.Int32(),
    "top_features": pl.String(), "scored_at": pl.Int64(),
}  # Int32 where the column is INTEGER: PostgreSQL's binary COPY refuses 8-byte values for int4


@dataclass(frozen=True, slots=True)
class PredictiveModelRecord:
    version: int
    status: str
    algorithm: str
    outcome: dict[str, Any]
    cutoff: int  # ms
    window_ms: int
    rows: int
    conversions: int
    card: dict[str, Any]
    sha256: str
    created_at: int
    created_by: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PredictiveModelRecord:
        return cls(version=row["version"], status=row["status"], algorithm=row["algorithm"],
                   outcome=load_json(row["outcome"]), cutoff=row["cutoff"], window_ms=row["window_ms"], rows=row["rows"],
                   conversions=row["conversions"], card=load_json(row["card"]), sha256=row["sha256"],
                   created_at=row["created_at"], created_by=row["created_by"])


_LISTED = [column for column in predictive_models.c if column.name not in ("id", "artefact")]


def add(connection: Connection, *, values: Mapping[str, Any], activate: bool) -> int:
    """Store a trained model as the next version (active when ``activate``: the active one, if
    any, becomes inactive); returns its version."""
    version = int(connection.execute(select(func.coalesce(func.max(predictive_models.c.version), 0))).scalar_one()) + 1
    if activate:
        connection.execute(update(predictive_models).where(predictive_models.c.status == ACTIVE).values(status=INACTIVE))
    connection.execute(predictive_models.insert().values(**values, version=version, status=ACTIVE if activate else INACTIVE))
    return version


def listed(connection: Connection) -> list[PredictiveModelRecord]:
    """Every stored model, newest first (without artefacts)."""
    rows = connection.execute(select(*_LISTED).order_by(predictive_models.c.version.desc())).mappings()
    return [PredictiveModelRecord.from_row(row) for row in rows]


def get(connection: Connection, version: int | None = None) -> tuple[PredictiveModelRecord, bytes] | None:
    """A model with its artefact: ``version``, or the active one (None: no such model)."""
    query = select(*_LISTED, predictive_models.c.artefact)
    query = query.where(predictive_models.c.status == ACTIVE if version is None else predictive_models.c.version == version)
    row = connection.execute(query).mappings().first()
    return None if row is None else (PredictiveModelRecord.from_row(row), bytes(row["artefact"]))


def activate(connection: Connection, version: int) -> bool:
    """Make ``version`` the active model (False: no such version)."""
    exists = connection.execute(select(predictive_models.c.version).where(predictive_models.c.version == version)).first()
    if exists is None:
        return False
    connection.execute(update(predictive_models).where(predictive_models.c.status == ACTIVE).values(status=INACTIVE))
    connection.execute(update(predictive_models).where(predictive_models.c.version == version).values(status=ACTIVE))
    return True


def score_of(connection: Connection, contact_id: int) -> Mapping[str, Any] | None:
    """The stored predictive score of a contact (``top_features`` parsed), or None."""
    row = connection.execute(select(predictive_scores).where(predictive_scores.c.contact_id == contact_id)).mappings().first()
    return None if row is None else {**row, "top_features": load_json(row["top_features"])}


def replace_scores(writer: AdbcWriter, scores: pl.DataFrame) -> None:
    """Every contact's predictive score replaced by ``scores`` (:data:`SCORE_SCHEMA` columns)."""
    writer.execute("DELETE FROM predictive_scores")
    if not scores.is_empty():
        writer.ingest("predictive_scores", scores, SCORE_SCHEMA)
