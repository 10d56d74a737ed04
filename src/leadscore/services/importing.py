"""Bulk import of events and contacts: read, validate, resolve, dedupe, store and score.

One chunk of the file is one transaction: its good rows are stored, scored and committed
together, so an interrupted import loses nothing that was committed and a re-run adds nothing
(message ids are idempotent; contacts are keyed by ``userId``). Bad rows never stop the import:
they are written to a reject file (CSV: line, reason, raw) next to the good data.
"""

from __future__ import annotations

import csv
import math
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import polars as pl

from leadscore.core import vectorized
from leadscore.core.types import ScoringModel
from leadscore.intake import read_contacts, read_events
from leadscore.services import account_scores, lifecycle, merging, traits as trait_updates
from leadscore.services.errors import LeadscoreError
from leadscore.services.pending import PendingScores
from leadscore.services.models import load_published_model
from leadscore.store.bulk import BulkSession
from leadscore.store.records import now_ms

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
    contacts_merged: int = 0
    reject_file: Path | None = None
    reject_reasons: dict[str, int] = field(default_factory=dict)


def import_events(
    database_url: str,
    path: Path,
    *,
    reject_path: Path | None = None,
    chunk_rows: int = 250_000,
    flush_rows: int = 2_000_000,
    progress: Progress | None = None,
    now: float | None = None,
) -> ImportReport:
    """Import a file of Segment messages (CSV / JSON lines / Parquet) and score them.

    Events are stored chunk by chunk; score state is written and the transaction committed
    every ``flush_rows`` stored events and at the end (see :mod:`leadscore.services.pending`).
    ``now`` (seconds; default the clock) is when the import happens: the receive time of the
    events and the moment the lifecycle, alerts and webhooks act at (simulations, demos).
    """
    model = load_published_model(database_url)
    report = ImportReport()
    received_at = now_ms() if now is None else math.floor(now * 1000)
    with _RejectWriter(reject_path or _default_reject_path(path)) as rejects:
        with BulkSession.open(database_url) as bulk, ThreadPoolExecutor(1, thread_name_prefix="writer") as writer:
            batch = _EventBatch(bulk, model, report, writer, now=now)
            try:
                for chunk in read_events(path, chunk_rows=chunk_rows, received_at_ms=received_at):
                    report.read += chunk.rows_read
                    rejects.write(chunk.rejects, report)
                    if not chunk.frame.is_empty():
                        batch.store(chunk.frame)
                    if batch.pending.rows >= flush_rows:
                        batch.flush()
                    if progress is not None:
                        progress(chunk.bytes_read, chunk.total_bytes)
                batch.flush()
            finally:
                batch.settle()
        report.reject_file = rejects.path if report.rejected else None
    return report


def import_contacts(
    database_url: str,
    path: Path,
    *,
    reject_path: Path | None = None,
    chunk_rows: int = 100_000,
    progress: Progress | None = None,
    now: float | None = None,
) -> ImportReport:
    """Import contacts (identify messages, or CSV/Parquet with ``userId``, ``traits.*``,
    ``account.*``): traits are merged over what is known, fit is recomputed. ``now`` as for
    :func:`import_events`."""
    model = load_published_model(database_url)
    report = ImportReport()
    received_at = now_ms() if now is None else math.floor(now * 1000)
    with _RejectWriter(reject_path or _default_reject_path(path)) as rejects:
        with BulkSession.open(database_url) as bulk:
            for chunk in read_contacts(path, chunk_rows=chunk_rows, received_at_ms=received_at):
                report.read += chunk.rows_read
                rejects.write(chunk.rejects, report)
                frame = chunk.frame
                if not frame.is_empty():
                    frame = _with_contact_ids(bulk, frame, report)
                    links = merging.identity_links(frame)
                    frame = _merged(bulk, model, frame, merging.plan_identity_merges(bulk, links), report)
                    report.contacts_updated += trait_updates.apply(bulk, model, frame)
                    _merged(bulk, model, frame, merging.plan_email_merges(bulk, frame["contact_id"]), report)
                    account_scores.scores_written(bulk, model, None, frame["contact_id"], now=now)  # attach by domain
                    lifecycle.scores_written(bulk, model, None, frame["contact_id"], now=now)  # traits moved: e.g. e-mail known
                    report.imported += frame.height
                bulk.commit()
                if progress is not None:
                    progress(chunk.bytes_read, chunk.total_bytes)
        report.reject_file = rejects.path if report.rejected else None
    return report


class ContactsChanged(LeadscoreError):
    """Another writer merged away a contact this transaction resolved (PostgreSQL, concurrent
    writers): nothing of the transaction is kept; running it again resolves the survivor. The
    live intake retries by itself; a file import stops here and can simply be run again."""


class _EventBatch:
    """The events of one import between two flushes: contacts resolved once per key, duplicates
    dropped, events stored, and their score contributions pending (see ``PendingScores``)."""

    def __init__(
        self,
        bulk: BulkSession,
        model: ScoringModel,
        report: ImportReport,
        writer: Executor,
        known: pl.DataFrame | None = None,
        now: float | None = None,
    ) -> None:
        self.bulk, self.model, self.report, self.writer = bulk, model, report, writer
        self._writing: Future[int] | None = None
        self._serialized = False
        self.pending = PendingScores(model, now=now)
        # every identity key met in this import -> contact, and whether that contact already had
        # events before the import (only those can hold duplicates of this file's messages)
        self._contacts = pl.DataFrame(schema=_KEY_SCHEMA) if known is None else known.cast(_KEY_SCHEMA)
        self._remembered = known is not None  # contact ids resolved by an earlier transaction
        self._seen = pl.DataFrame(schema={"contact_id": pl.Int64, "message_id": pl.String})

    def settle(self) -> None:
        """Wait for the events being written (the database is used by one call at a time; the
        insert of a chunk overlaps with scoring it and reading the next one)."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()

    def store(self, frame: pl.DataFrame) -> None:
        self.settle()
        if not self._serialized:
            self.bulk.serialize_writers()  # until this transaction commits (at the flush)
            self._serialized = True
        frame = self._with_contacts(frame)
        # contacts remembered from an earlier transaction may have been merged away by another
        # writer since (PostgreSQL also locks them here, whatever their age); on SQLite, what
        # this transaction resolved itself cannot change under it
        if self._remembered or self.bulk.dialect == "postgresql":
            contacts = frame.get_column("contact_id").unique()
            if self.bulk.lock_contacts(contacts).len() != contacts.len():
                raise ContactsChanged("a contact of these events was merged by another writer meanwhile")
        unique = frame.unique(["contact_id", "message_id"], keep="first", maintain_order=True)
        fresh = unique.join(self._seen, on=["contact_id", "message_id"], how="anti")
        earlier = fresh.filter(pl.col("had_events"))
        if not earlier.is_empty():
            stored = self.bulk.existing_message_ids(earlier.select("contact_id", "message_id"))
            fresh = fresh.join(stored, on=["contact_id", "message_id"], how="anti", maintain_order="left")
        self.report.duplicates += frame.height - fresh.height
        if fresh.is_empty():
            return
        scoring = to_scoring_frame(fresh)
        machine = vectorized.flag_machine(self.model, scoring)
        fresh, scoring = fresh.with_columns(machine=machine), scoring.with_columns(machine=machine)
        self._writing = self.writer.submit(self.bulk.insert_events, fresh.drop("line", "had_events", "group_id", strict=False))
        self._seen = pl.concat([self._seen, fresh.select("contact_id", "message_id")])
        self.report.imported += fresh.height
        self.pending.add(scoring)
        traits = fresh.filter(pl.col("type").is_in(["identify", "group"]) & pl.col("traits").is_not_null())
        if not traits.is_empty():
            self.settle()
            self.report.contacts_updated += trait_updates.apply_messages(self.bulk, self.model, traits)
            self._merge(merging.plan_email_merges(self.bulk, traits["contact_id"]))

    @property
    def known_contacts(self) -> pl.DataFrame:
        """``[user_id, anonymous_id, contact_id, had_events]`` of every identity key this batch
        resolved, for a next batch to start from (``known=``): a live intake keeps it between
        transactions. The contacts are re-checked to exist in each transaction that uses them."""
        return self._contacts

    def flush(self) -> None:
        self.settle()
        self.pending.flush(self.bulk)
        self.bulk.commit()
        self._serialized = False
        self._remembered = not self._contacts.is_empty()
        # what this import stored is now in the database: probe it there from now on
        self._seen = self._seen.clear()
        self._contacts = self._contacts.with_columns(had_events=pl.lit(True))

    def _merge(self, plan: pl.DataFrame) -> None:
        """Merge contacts (see ``services/merging.py``). Pending scores are written first: the
        merge replays each survivor from the stored log, which by then holds every event of this
        import (the writer has settled), so nothing is counted twice or lost; later events add
        to the survivor's replayed state as usual."""
        if plan.is_empty():
            return
        self.pending.flush(self.bulk)
        merged = merging.merge(self.bulk, self.model, plan)
        self.report.contacts_merged += merged.height
        survivor = pl.col("contact_id").is_in(merged["survivor_id"].implode())
        self._contacts = merging.remap(self._contacts, merged).with_columns(had_events=pl.col("had_events") | survivor)
        self._seen = merging.remap(self._seen, merged)

    def _with_contacts(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Attach ``contact_id`` and ``had_events`` to each row, creating unknown contacts."""
        keys = frame.select("user_id", "anonymous_id").unique(maintain_order=True)
        new_keys = keys.join(self._contacts, on=["user_id", "anonymous_id"], how="anti", nulls_equal=True)
        if not new_keys.is_empty():
            resolved = self.bulk.resolve_contacts(new_keys)
            self.report.contacts_created += int(resolved["created"].sum())
            ids = new_keys.with_columns(contact_id=resolved["contact_id"].cast(pl.Int64))
            with_events = self.bulk.contacts_with_events(ids["contact_id"].filter(~resolved["created"]))
            ids = ids.with_columns(had_events=pl.col("contact_id").is_in(with_events.implode()))
            self._contacts = pl.concat([self._contacts, ids.cast(_KEY_SCHEMA)])
        self._merge(merging.plan_identity_merges(self.bulk, merging.identity_links(frame, new_keys)))
        return frame.join(self._contacts, on=["user_id", "anonymous_id"], how="left", nulls_equal=True, maintain_order="left")


_KEY_SCHEMA = {"user_id": pl.String, "anonymous_id": pl.String, "contact_id": pl.Int64, "had_events": pl.Boolean}


def _with_contact_ids(bulk: BulkSession, frame: pl.DataFrame, report: ImportReport) -> pl.DataFrame:
    """Attach ``contact_id`` to each row of a contacts chunk, creating the unknown contacts."""
    keys = frame.select("user_id", "anonymous_id").unique(maintain_order=True)
    resolved = bulk.resolve_contacts(keys)
    report.contacts_created += int(resolved["created"].sum())
    ids = keys.with_columns(contact_id=resolved["contact_id"].cast(pl.Int64))
    return frame.join(ids, on=["user_id", "anonymous_id"], how="left", nulls_equal=True, maintain_order="left")


def _merged(
    bulk: BulkSession, model: ScoringModel, frame: pl.DataFrame, plan: pl.DataFrame, report: ImportReport
) -> pl.DataFrame:
    """Carry out the merges of a contacts chunk; the frame's contact ids then name survivors."""
    merged = merging.merge(bulk, model, plan)
    report.contacts_merged += merged.height
    return merging.remap(frame, merged)


def to_scoring_frame(events: pl.DataFrame) -> pl.DataFrame:
    """Stored/canonical events (``ts`` in ms) as the core's vectorised scorer wants them."""
    return events.with_columns((pl.col("ts") / 1000.0).alias("ts"))


def _default_reject_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.csv")


class _RejectWriter:
    """Appends rejected rows to a CSV file created on the first reject (none is left otherwise)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: TextIO | None = None
        self._writer: Any = None  # a csv writer (its type is private to the csv module)

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
