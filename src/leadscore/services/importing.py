"""Bulk import of events and contacts: read, validate, resolve, dedupe, store and score.

One chunk of the file is one transaction: its good rows are stored, scored and committed
together, so an interrupted import loses nothing that was committed and a re-run adds nothing
(message ids are idempotent; contacts are keyed by ``userId``). Bad rows never stop the import:
they are written to a reject file (CSV: line, reason, raw) next to the good data.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from leadscore.core import vectorized
from leadscore.core.types import ScoringModel
from leadscore.intake import read_contacts, read_events
from leadscore.services import traits as trait_updates
from leadscore.services.models import published_model
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.records import now_ms
from leadscore.store.uow import UnitOfWork

Progress = Callable[[int, int], None]
"""``progress(bytes_done, bytes_total)`` — called after each committed chunk."""


@dataclass(slots=True)
class ImportReport:
    """What an import did, for the CLI summary and the API answer."""

    read: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    contacts_created: int = 0
    contacts_updated: int = 0
    reject_file: Path | None = None
    reject_reasons: dict[str, int] = field(default_factory=dict)


def load_published_model(database_url: str) -> ScoringModel:
    engine = make_engine(database_url)
    try:
        with UnitOfWork(engine) as uow:
            return published_model(uow)
    finally:
        engine.dispose()


def import_events(
    database_url: str,
    path: Path,
    *,
    reject_path: Path | None = None,
    chunk_rows: int = 250_000,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a file of Segment messages (CSV / JSON lines / Parquet) and score them."""
    model = load_published_model(database_url)
    report = ImportReport()
    received_at = now_ms()
    with _RejectWriter(reject_path or _default_reject_path(path)) as rejects:
        with BulkSession.open(database_url) as bulk:
            for chunk in read_events(path, chunk_rows=chunk_rows, received_at_ms=received_at):
                report.read += chunk.rows_read
                rejects.write(chunk.rejects, report)
                if not chunk.frame.is_empty():
                    _store_event_chunk(bulk, model, chunk.frame, report)
                bulk.commit()
                if progress is not None:
                    progress(chunk.bytes_read, chunk.total_bytes)
        report.reject_file = rejects.path if report.rejected else None
    return report


def import_contacts(
    database_url: str,
    path: Path,
    *,
    reject_path: Path | None = None,
    chunk_rows: int = 100_000,
    progress: Progress | None = None,
) -> ImportReport:
    """Import contacts (identify messages, or CSV/Parquet with ``userId``, ``traits.*``,
    ``account.*``): traits are merged over what is known, fit is recomputed."""
    model = load_published_model(database_url)
    report = ImportReport()
    with _RejectWriter(reject_path or _default_reject_path(path)) as rejects:
        with BulkSession.open(database_url) as bulk:
            for chunk in read_contacts(path, chunk_rows=chunk_rows, received_at_ms=now_ms()):
                report.read += chunk.rows_read
                rejects.write(chunk.rejects, report)
                frame = chunk.frame
                if not frame.is_empty():
                    frame = _with_contacts(bulk, frame, report)
                    report.contacts_updated += trait_updates.apply(bulk, model, frame)
                    report.imported += frame.height
                bulk.commit()
                if progress is not None:
                    progress(chunk.bytes_read, chunk.total_bytes)
        report.reject_file = rejects.path if report.rejected else None
    return report


def _store_event_chunk(bulk: BulkSession, model: ScoringModel, frame: pl.DataFrame, report: ImportReport) -> None:
    frame = _with_contacts(bulk, frame, report)
    unique = frame.unique(["contact_id", "message_id"], keep="first", maintain_order=True)
    stored = bulk.existing_message_ids(unique.select("contact_id", "message_id"))
    fresh = unique.join(stored, on=["contact_id", "message_id"], how="anti", maintain_order="left")
    report.duplicates += frame.height - fresh.height
    if fresh.is_empty():
        return
    scoring_frame = to_scoring_frame(fresh)
    fresh = fresh.with_columns(machine=vectorized.flag_machine(model, scoring_frame))
    bulk.insert_events(fresh.drop("line", "created", "group_id", strict=False))
    report.imported += fresh.height
    _update_scores(bulk, model, fresh, scoring_frame)
    identifies = fresh.filter(pl.col("type").is_in(["identify", "group"]) & pl.col("traits").is_not_null())
    if not identifies.is_empty():
        report.contacts_updated += trait_updates.apply_messages(bulk, model, identifies)


def _with_contacts(bulk: BulkSession, frame: pl.DataFrame, report: ImportReport) -> pl.DataFrame:
    """Attach ``contact_id`` and ``created`` to each row, creating the contacts not yet known."""
    keys = frame.select("user_id", "anonymous_id").unique(maintain_order=True)
    resolved = bulk.resolve_contacts(keys)
    report.contacts_created += int(resolved["created"].sum())
    ids = keys.with_columns(contact_id=resolved["contact_id"], created=resolved["created"])
    return frame.join(ids, on=["user_id", "anonymous_id"], how="left", nulls_equal=True, maintain_order="left")


def _update_scores(bulk: BulkSession, model: ScoringModel, fresh: pl.DataFrame, scoring_frame: pl.DataFrame) -> None:
    """Fold the new events into the stored accumulators.

    Unlimited rules merge in O(1) per (contact, rule). A contact that already had events and
    now has an event for a rule with a frequency limit is recomputed from its whole log: a late
    event may displace one that was counted (see docs/architecture.md).
    """
    batch_state = vectorized.accumulate(model, scoring_frame)
    touched = fresh.select("contact_id").unique()["contact_id"]
    old_state = bulk.load_state(touched)
    merged = vectorized.merge_state(model, old_state, batch_state)
    limited = [rule.id for rule in model.engagement_rules if rule.limit is not None]
    if limited:
        known_before = fresh.filter(~pl.col("created")).select("contact_id").unique()
        redo = batch_state.filter(pl.col("rule_id").is_in(limited)).join(known_before, on="contact_id", how="semi")
        redo_ids = redo.select("contact_id").unique()["contact_id"]
        if redo_ids.len():
            history = to_scoring_frame(bulk.read_events(redo_ids))
            replayed = vectorized.accumulate(model, history)
            merged = pl.concat(
                [merged.filter(~pl.col("contact_id").is_in(redo_ids.implode())), replayed],
                how="vertical_relaxed",
            )
    bulk.replace_state(merged, touched)
    last = fresh.group_by("contact_id").agg((pl.col("ts").max() / 1000.0).alias("batch_last"))
    current = bulk.read_contacts(["last_event_at"], touched)
    latest = current.join(last, on="contact_id").select(
        "contact_id", pl.max_horizontal("last_event_at", "batch_last").alias("last_event_at")
    )
    bulk.upsert_contacts(latest)


def to_scoring_frame(events: pl.DataFrame) -> pl.DataFrame:
    """Stored/canonical events (``ts`` in ms) as the core's vectorised scorer wants them."""
    return events.with_columns((pl.col("ts") / 1000.0).alias("ts"))


def _default_reject_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.csv")


class _RejectWriter:
    """Appends rejected rows to a CSV file created on the first reject (none is left otherwise)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = None
        self._writer: csv.writer | None = None  # type: ignore[valid-type]

    def __enter__(self) -> _RejectWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()

    def write(self, rejects: pl.DataFrame, report: ImportReport) -> None:
        if rejects.is_empty():
            return
        if self._handle is None:
            self._handle = self.path.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(["line", "reason", "raw"])
        for line, reason, raw in rejects.select("line", "reason", "raw").iter_rows():
            self._writer.writerow([line, reason, _defuse(raw)])
            report.reject_reasons[reason.split(":")[0]] = report.reject_reasons.get(reason.split(":")[0], 0) + 1
        report.rejected += rejects.height


def _defuse(cell: str | None) -> str:
    """Neutralise spreadsheet formulas in echoed input (CSV injection)."""
    text = cell or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
