"""Full rescore: rebuild every contact's fit and score state from traits and the event log.

Run after publishing a model (or any time: the stored state is only a cache of the log). The
work is chunked by contact so memory stays bounded, set-based inside each chunk, and done in one
transaction: readers see the old scores until the new ones are complete.
"""

from __future__ import annotations

from collections.abc import Callable
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import polars as pl

from leadscore.core import vectorized
from leadscore.core.types import ScoringModel
from leadscore.services import account_scores, alerts, lifecycle
from leadscore.services.importing import to_scoring_frame
from leadscore.services.models import load_published_model
from leadscore.services.traits import refresh_fit
from leadscore.store.bulk import BulkSession

_STATE_SCHEMA = {"contact_id": pl.Int64, "rule_id": pl.String, "s": pl.Float64, "t_ref": pl.Float64}

Progress = Callable[[int, int], None]
"""``progress(contacts_done, contacts_total)``."""


@dataclass(frozen=True, slots=True)
class RescoreReport:
    contacts: int
    events: int
    state_rows: int


def rescore(database_url: str, *, chunk_contacts: int = 50_000, progress: Progress | None = None) -> RescoreReport:
    model = load_published_model(database_url)
    with (
        BulkSession.open(database_url) as bulk,
        _LogReaders(database_url, 2) as readers,
        ThreadPoolExecutor(1, thread_name_prefix="fit") as fitter,
        ThreadPoolExecutor(1, thread_name_prefix="state-writer") as writer,
    ):
        contacts = bulk.read_contacts(["traits", "account_id", "last_event_at"])
        accounts = bulk.read_accounts().select("account_id", pl.col("traits").alias("account"))
        ids = contacts["contact_id"].sort()
        spans = [(ids[o], ids[min(o + chunk_contacts, ids.len()) - 1]) for o in range(0, ids.len(), chunk_contacts)]
        types, names = scored_event_kinds(model)
        columns = scoring_columns(model)

        def read(span: tuple[int, int]) -> pl.DataFrame:
            return readers.session().read_events(
                types=types, event_names=names, columns=columns, contact_range=span, ordered=False
            )

        # Everything overlaps: two connections read the next chunks of the log (it does not
        # change during a rescore), one thread computes fit, this thread accumulates the current
        # chunk, and the state of the previous chunk is written on `bulk` (the only connection
        # that writes; spans ascend, so the clustered state table is appended in key order).
        upcoming = [readers.pool.submit(read, span) for span in spans[:2]]
        fitting = fitter.submit(refresh_fit, model, contacts.join(accounts, on="account_id", how="left"))
        writing = writer.submit(bulk.replace_state, pl.DataFrame(schema=_STATE_SCHEMA))
        events, state_rows = 0, 0
        for index, (low, high) in enumerate(spans):
            log = upcoming.pop(0).result()
            if index + 2 < len(spans):
                upcoming.append(readers.pool.submit(read, spans[index + 2]))
            state = vectorized.accumulate(model, to_scoring_frame(log))
            latest = state.group_by("contact_id").agg(pl.col("t_ref").max().alias("last_event_at"))
            if index == 0:
                fit = fitting.result().select("contact_id", "fit_raw", "excluded")
            in_span = fit.filter(pl.col("contact_id").is_between(low, high))
            state_rows += writing.result()
            writing = writer.submit(_write_chunk, bulk, model, state, in_span.join(latest, on="contact_id", how="left"))
            events += log.height
            if progress is not None:
                progress(min((index + 1) * chunk_contacts, ids.len()), ids.len())
        state_rows += writing.result()
        account_scores.rescored(bulk, model, now=time.time())  # every contact's state is written: accounts now
        bulk.commit()
    return RescoreReport(contacts=ids.len(), events=events, state_rows=state_rows)


def _write_chunk(bulk: BulkSession, model: ScoringModel, state: pl.DataFrame, contacts: pl.DataFrame) -> int:
    """Append one span's accumulators, update its contacts' fit and last event time, and queue
    the webhook notices the new scores call for (a new model moves scores too)."""
    bulk.upsert_contacts(contacts)
    written = bulk.append_state(state)
    alerts.scores_written(bulk, model, state, contacts.get_column("contact_id"))
    lifecycle.scores_written(bulk, model, state, contacts.get_column("contact_id"))
    return written


def scoring_columns(model: ScoringModel) -> list[str]:
    """The event columns scoring reads: keys, time, kind, and the JSON roots conditions use."""
    roots = vectorized.referenced_roots(model)
    return ["contact_id", "message_id", "ts", "type", "event", *roots]


def scored_event_kinds(model: ScoringModel) -> tuple[list[str], list[str]]:
    """The event types and track names some engagement rule can match (others need no reading)."""
    special = {"page", "screen", "identify", "group", "alias"}
    types = sorted({rule.on for rule in model.engagement_rules if rule.on in special})
    names = sorted({rule.on for rule in model.engagement_rules if rule.on not in special})
    return types, names


class _LogReaders:
    """A small pool of threads, each with its own read connection to the store."""

    def __init__(self, database_url: str, threads: int) -> None:
        self._url = database_url
        self._local = threading.local()
        self._stack = ExitStack()
        self._lock = threading.Lock()
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="log-reader")

    def __enter__(self) -> _LogReaders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._stack.close()

    def session(self) -> BulkSession:
        """The calling thread's read session (opened on first use)."""
        session = getattr(self._local, "session", None)
        if session is None:
            with self._lock:
                session = self._stack.enter_context(BulkSession.open_reader(self._url))
            self._local.session = session
        return session
