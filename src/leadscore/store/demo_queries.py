"""The few reads the demo story needs (see :mod:`leadscore.services.demo_story`)."""

from __future__ import annotations

import polars as pl

from leadscore.store.adbc import AdbcWriter

OPEN_LEAD_SCHEMA = {"contact_id": pl.Int64, "stage": pl.String, "entered_at": pl.Int64, "owner_key": pl.String}


def open_leads(writer: AdbcWriter, stages: tuple[str, ...], *, before_ms: int) -> pl.DataFrame:
    """Contacts in one of ``stages`` that entered it before ``before_ms``, by contact id, with
    their owner's key (null: unowned)."""
    marks = ", ".join("?" for _ in stages)
    return writer.query(
        "SELECT s.contact_id, s.stage, s.entered_at, o.key AS owner_key FROM contact_stages s "
        "LEFT JOIN owners o ON o.id = s.owner_id "
        f"WHERE s.stage IN ({marks}) AND s.entered_at < ? ORDER BY s.contact_id",
        OPEN_LEAD_SCHEMA,
        (*stages, before_ms),
    )


def stage_counts(writer: AdbcWriter, first_stage: str) -> dict[str, int]:
    """How many contacts are in each stage (contacts without a stage row are in ``first_stage``)."""
    counted = writer.query(
        "SELECT s.stage, COUNT(*) AS n FROM contacts c LEFT JOIN contact_stages s ON s.contact_id = c.id GROUP BY s.stage",
        {"stage": pl.String, "n": pl.Int64},
    )
    counts: dict[str, int] = {}
    for stage, n in counted.iter_rows():
        counts[stage or first_stage] = counts.get(stage or first_stage, 0) + n
    return counts
