"""Live event intake: Segment messages from HTTP requests, stored and scored with group commit.

Each HTTP request hands its decoded messages to the :class:`IntakeWriter` of its process and
waits. A validator thread validates every request queued at that moment in one pass (a batch is
accepted or refused as a whole); the writer thread has everything validated stored and scored
together in one transaction — the same code path as a file import (contacts resolved, duplicates
dropped, events inserted, score state merged) — by the store, which runs in a child process in
a server (``writer_process=True``: its own core and GIL), commits, and only then answers the
waiting requests. So an acknowledged event is durable, a request never sees half of its batch
stored, and under load many requests share one commit: throughput grows with concurrency
instead of collapsing into lock waits.

Several server processes may run, each with its own writer. Their transactions take turns: on
SQLite on a file lock beside the database (a blocking ``flock``, handed over at once), on
PostgreSQL on a transaction advisory lock
(``BulkSession.serialize_writers``), so resolving, merging and scoring the same people from two
processes can neither deadlock nor interleave. What runs in parallel is everything before: HTTP,
JSON decoding and validation. A transaction that fails on a transient database error is retried,
having stored nothing.
"""

from __future__ import annotations

import fcntl
import io
import logging
import multiprocessing
import queue
import threading
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import orjson
import polars as pl
from adbc_driver_manager import dbapi as adbc_errors

from leadscore.core.types import ScoringModel
from leadscore.intake.jsonl import messages_from_objects
from leadscore.intake.validate import validate_events
from leadscore.services.errors import LeadscoreError, NoPublishedModel
from leadscore.services.importing import ContactsChanged, ImportReport, _EventBatch
from leadscore.services.models import published_model
from leadscore.settings import is_sqlite, sqlite_path
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


class InvalidMessages(LeadscoreError):
    """Some messages of a request are unusable: the request is refused whole, nothing stored.
    The message names each bad one by its position, ``batch[3]: missing userId and anonymousId``."""


@dataclass(slots=True)
class _Request:
    messages: list[Any]
    sizes: list[int]
    received_ms: int
    future: Future[IntakeResult]


@dataclass(slots=True)
class _Validated:
    frame: pl.DataFrame
    requests: list[_Request]


_STOP = object()
_KNOWN_LIMIT = 500_000
"""Identity keys an intake store remembers between transactions (beyond, it starts again)."""


class IntakeWriter:
    """The intake pipeline of one server process (see the module docstring): a validator
    thread turns every request queued at that moment into canonical events in one vectorised
    pass, and the writer thread stores and scores what is validated, in one transaction a group."""

    def __init__(
        self, database_url: str, *, max_rows: int = 50_000, retries: int = 5, writer_process: bool = False
    ) -> None:
        self._max_rows = max_rows
        self._incoming: queue.Queue[Any] = queue.Queue()
        self._validated: queue.Queue[Any] = queue.Queue()
        # the store runs in a process of its own (its own core, its own GIL) or on this thread
        self._store: _EventStore | _StoreProcess = (
            _StoreProcess(database_url, retries) if writer_process else _EventStore(database_url, retries)
        )
        self._validator = threading.Thread(target=self._validate_loop, name="intake-validator", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="intake-writer", daemon=True)
        self._validator.start()
        self._writer.start()

    def submit(self, messages: list[Any], *, received_ms: int, sizes: list[int] | None = None) -> Future[IntakeResult]:
        """Queue one request's Segment messages (decoded JSON; ``sizes`` their encoded sizes,
        measured when not given). The future fails with :class:`InvalidMessages` when any of
        them is unusable, with :class:`IntakeUnavailable` when the store cannot take them."""
        future: Future[IntakeResult] = Future()
        measured = sizes if sizes is not None else [len(orjson.dumps(m)) if isinstance(m, dict) else 0 for m in messages]
        self._incoming.put(_Request(messages, measured, received_ms, future))
        return future

    def close(self) -> None:
        """Finish what is queued, then stop."""
        self._incoming.put(_STOP)
        self._validator.join()
        self._writer.join()
        self._store.close()

    # the validator thread -------------------------------------------------------------------

    def _validate_loop(self) -> None:
        while True:
            group, stop = _drain(self._incoming, lambda request: len(request.messages), self._max_rows)
            if group:
                try:
                    validated = _validate(group)
                except BaseException as error:  # a fault of ours: every waiting request gets it
                    for request in group:
                        request.future.set_exception(error)
                else:
                    if validated.requests:
                        self._validated.put(validated)
            if stop:
                self._validated.put(_STOP)
                return

    # the writer thread ----------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            group, stop = _drain(self._validated, lambda item: item.frame.height, self._max_rows)
            if group:
                self._write_group(group)
            if stop:
                return

    def _write_group(self, group: list[_Validated]) -> None:
        requests = [request for item in group for request in item.requests]
        try:
            self._store.store([item.frame for item in group])
        except BaseException as error:  # every waiting request gets the failure
            for request in requests:
                request.future.set_exception(error)
            return
        for request in requests:
            request.future.set_result(IntakeResult(accepted=len(request.messages)))

class _EventStore:
    """Stores and scores validated events for one intake pipeline (see the module docstring)."""

    def __init__(self, database_url: str, retries: int) -> None:
        self._url = database_url
        self._retries = retries
        self._engine = make_engine(database_url)
        self._bulk: BulkSession | None = None
        # identity keys -> contacts resolved by earlier transactions, checked to exist each time:
        # a key only changes contact by a merge, which deletes the old one (ids are never reused)
        self._known: pl.DataFrame | None = None
        self._turns = open(sqlite_path(database_url) + "-writers.lock", "a+b") if is_sqlite(database_url) else None  # noqa: SIM115

    def close(self) -> None:
        self._reset()
        if self._turns is not None:
            self._turns.close()
        self._engine.dispose()

    def store(self, frames: list[pl.DataFrame]) -> None:
        """Store and score the frames in one transaction, retried on transient failures."""
        for attempt in range(self._retries + 1):
            try:
                with self._turn():
                    self._store_now(frames)
                return
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

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """SQLite: wait for this process's turn to write on a file lock beside the database,
        so the writers of several server processes hand the database over at once instead of
        sleeping in SQLite's busy handler. (PostgreSQL: the transaction's advisory lock.)"""
        if self._turns is None:
            yield
            return
        fcntl.flock(self._turns, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._turns, fcntl.LOCK_UN)

    def _store_now(self, frames: list[pl.DataFrame]) -> None:
        model = self._model()
        bulk = self._session()
        report = ImportReport()
        batch = _EventBatch(bulk, model, report, _Inline(), known=self._known)
        try:
            batch.store(pl.concat(frames, how="vertical_relaxed"))
            batch.flush()  # scores folded in and everything committed
        except BaseException:
            bulk.rollback()
            self._known = None  # a merge elsewhere, a rollback: resolve afresh
            raise
        known = batch.known_contacts
        self._known = None if known.height > _KNOWN_LIMIT else known

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




class _StoreProcess:
    """An :class:`_EventStore` in a child process: the parent's writer thread sends it each
    group's events (Arrow IPC) and waits for the outcome. The parent keeps HTTP, decoding and
    validation; the child writes — two cores, two GILs. A child that dies is started again."""

    def __init__(self, database_url: str, retries: int) -> None:
        self._url, self._retries = database_url, retries
        self._connection: Any = None
        self._process: Any = None
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process that has threads
        parent, child = context.Pipe()
        self._process = context.Process(
            target=_store_process_main, args=(self._url, self._retries, child), name="leadscore-intake-store", daemon=True
        )
        self._process.start()
        child.close()
        self._connection = parent

    def store(self, frames: list[pl.DataFrame]) -> None:
        sink = io.BytesIO()
        pl.concat(frames, how="vertical_relaxed").write_ipc(sink)
        try:
            self._connection.send_bytes(sink.getvalue())
            outcome, message = self._connection.recv()
        except (EOFError, OSError) as error:
            self._connection.close()
            self._process.join(timeout=5)
            self._start()
            raise IntakeUnavailable(f"the intake store process stopped ({error or 'no answer'}); it was restarted") from None
        if outcome == "unavailable":
            raise IntakeUnavailable(message)
        if outcome != "ok":
            raise RuntimeError(f"intake store process: {message}")

    def close(self) -> None:
        try:
            self._connection.send_bytes(b"")
            self._process.join(timeout=60)
        except (OSError, EOFError):
            pass
        finally:
            self._connection.close()
            if self._process.is_alive():
                self._process.terminate()


def _store_process_main(database_url: str, retries: int, connection: Any) -> None:
    """The child process of :class:`_StoreProcess`: store what arrives until an empty message."""
    from leadscore.store.adbc import use_stdlib_sqlite

    use_stdlib_sqlite()  # this process uses SQLAlchemy too: one SQLite library
    store = _EventStore(database_url, retries)
    try:
        while True:
            payload = connection.recv_bytes()
            if not payload:
                return
            try:
                store.store([pl.read_ipc(io.BytesIO(payload))])
            except IntakeUnavailable as error:
                connection.send(("unavailable", str(error)))
            except Exception as error:  # reported to the waiting requests by the parent
                log.exception("intake store failed")
                connection.send(("error", f"{type(error).__name__}: {error}"))
            else:
                connection.send(("ok", None))
    finally:
        store.close()


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _drain(source: queue.Queue[Any], size: Callable[[Any], int], limit: int) -> tuple[list[Any], bool]:
    """Wait for one item, then take whatever else is queued, up to ``limit`` rows; and whether
    the stop mark came."""
    first = source.get()
    if first is _STOP:
        return [], True
    group, rows = [first], size(first)
    while rows < limit:
        try:
            item = source.get_nowait()
        except queue.Empty:
            break
        if item is _STOP:
            return group, True
        group.append(item)
        rows += size(item)
    return group, False


def _validate(group: list[_Request]) -> _Validated:
    """Validate every request of the group in one pass; refuse the requests holding a bad
    message (their futures fail with :class:`InvalidMessages`) and keep the others' events."""
    counts = [len(request.messages) for request in group]
    starts = np.cumsum([0, *counts[:-1]])
    frame = messages_from_objects(
        [message for request in group for message in request.messages],
        list(range(sum(counts))),
        kind="events",
        sizes=[size for request in group for size in request.sizes],
    ).with_columns(pl.Series("_arrival_ms", np.repeat([request.received_ms for request in group], counts), dtype=pl.Int64))
    good, rejects = validate_events(frame, received_at_ms="_arrival_ms")
    bad: set[int] = set()
    if not rejects.is_empty():
        located = rejects.with_columns(
            pl.Series("request", np.searchsorted(starts, rejects.get_column("line").to_numpy(), side="right") - 1)
        ).with_columns((pl.col("line") - pl.col("request").replace_strict(dict(enumerate(starts.tolist())))).alias("position"))
        for (index,), problems in located.sort("request", "position").group_by("request", maintain_order=True):
            listed = [f"batch[{position}]: {reason}" for position, reason in problems.select("position", "reason").head(20).iter_rows()]
            more = f" (and {problems.height - 20} more)" if problems.height > 20 else ""
            group[index].future.set_exception(InvalidMessages("; ".join(listed) + more + "; nothing was stored"))
            bad.add(int(index))
    if bad:
        requests = np.searchsorted(starts, good.get_column("line").to_numpy(), side="right") - 1
        good = good.filter(~pl.Series(requests).is_in(sorted(bad)))
    return _Validated(good, [request for index, request in enumerate(group) if index not in bad])
