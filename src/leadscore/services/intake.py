"""Live event intake: Segment messages from HTTP requests, stored and scored with group commit.

Each HTTP request validates its messages (a batch is accepted or refused as a whole), then
hands the frame to the :class:`IntakeWriter` of its process and waits. The writer thread takes
every frame queued at that moment, stores and scores them together in one transaction — the
same code path as a file import (contacts resolved, duplicates dropped, events inserted, score
state merged) — commits, and only then answers the waiting requests. So an acknowledged event
is durable, a request never sees half of its batch stored, and under load many requests share
one commit: throughput grows with concurrency instead of collapsing into lock waits.

Several server processes may run, each with its own writer. Their transactions take turns: on
SQLite on the database's write lock, on PostgreSQL on a transaction advisory lock
(``BulkSession.serialize_writers``), so resolving, merging and scoring the same people from two
processes can neither deadlock nor interleave. What runs in parallel is everything before: HTTP,
JSON decoding and validation. A transaction that fails on a transient database error is retried,
having stored nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import polars as pl
from adbc_driver_manager import dbapi as adbc_errors

from leadscore.core.types import ScoringModel
from leadscore.services.errors import LeadscoreError, NoPublishedModel
from leadscore.services.importing import ContactsChanged, ImportReport, _EventBatch
from leadscore.services.models import published_model
from leadscore.store.adbc import AdbcWriter
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """One request's messages, durably stored and scored (a re-sent message id is accepted
    and counted once)."""

    accepted: int


class IntakeUnavailable(LeadscoreError):
    """The store cannot take events right now (the client should retry later)."""


class _Inline(Executor):
    """Runs submitted work at once: the intake writer is already a thread of its own."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


@dataclass(slots=True)
class _Request:
    frame: pl.DataFrame
    future: Future[IntakeResult]


_STOP = object()


class IntakeWriter:
    """The one thread of a server process that writes events (see the module docstring)."""

    def __init__(self, database_url: str, *, max_rows: int = 50_000, retries: int = 5) -> None:
        self._url = database_url
        self._max_rows = max_rows
        self._retries = retries
        self._queue: queue.Queue[Any] = queue.Queue()
        self._engine = make_engine(database_url)
        self._bulk: BulkSession | None = None
        self._thread = threading.Thread(target=self._run, name="intake-writer", daemon=True)
        self._thread.start()

    def submit(self, frame: pl.DataFrame) -> Future[IntakeResult]:
        """Queue validated canonical events (the frame of ``intake.validate_events``)."""
        future: Future[IntakeResult] = Future()
        self._queue.put(_Request(frame, future))
        return future

    def close(self) -> None:
        """Finish what is queued, then stop."""
        self._queue.put(_STOP)
        self._thread.join()
        if self._bulk is not None:
            self._bulk.close()
        self._engine.dispose()

    # the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            group = [item]
            rows = item.frame.height
            stop = False
            while rows < self._max_rows:
                try:
                    extra = self._queue.get_nowait()
                except queue.Empty:
                    break
                if extra is _STOP:
                    stop = True
                    break
                group.append(extra)
                rows += extra.frame.height
            self._write_group(group)
            if stop:
                return

    def _write_group(self, group: list[_Request]) -> None:
        try:
            results = self._store_with_retries([request.frame for request in group])
        except BaseException as error:  # every waiting request gets the failure
            for request in group:
                request.future.set_exception(error)
            return
        for request, result in zip(group, results, strict=True):
            request.future.set_result(result)

    def _store_with_retries(self, frames: list[pl.DataFrame]) -> list[IntakeResult]:
        for attempt in range(self._retries + 1):
            try:
                return self._store(frames)
            except (adbc_errors.IntegrityError, adbc_errors.OperationalError, ContactsChanged) as error:
                self._reset()
                if attempt == self._retries:
                    raise IntakeUnavailable(f"the store refused the events: {_first_line(error)}") from error
                log.info("intake transaction lost a race (%s); retrying", _first_line(error))
                time.sleep(0.005 * (2**attempt))
            except adbc_errors.Error as error:
                self._reset()
                raise IntakeUnavailable(f"the store cannot take events: {_first_line(error)}") from error
        raise AssertionError("unreachable")

    def _store(self, frames: list[pl.DataFrame]) -> list[IntakeResult]:
        model = self._model()
        bulk = self._session()
        report = ImportReport()
        batch = _EventBatch(bulk, model, report, _Inline())
        try:
            batch.store(pl.concat(frames, how="vertical_relaxed"))
            batch.flush()  # scores folded in and everything committed
        except BaseException:
            bulk.rollback()
            raise
        return [IntakeResult(accepted=frame.height) for frame in frames]

    def _model(self) -> ScoringModel:
        with UnitOfWork(self._engine) as uow:
            try:
                return published_model(uow)
            except NoPublishedModel as error:
                raise IntakeUnavailable(str(error)) from None

    def _session(self) -> BulkSession:
        if self._bulk is None:
            self._bulk = BulkSession(AdbcWriter.connect(self._url))
        return self._bulk

    def _reset(self) -> None:
        if self._bulk is not None:
            try:
                self._bulk.close()
            finally:
                self._bulk = None


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
