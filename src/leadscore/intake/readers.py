"""Reading import files into canonical events and contacts, chunk by chunk.

:func:`read_events` and :func:`read_contacts` pick the reader from the file name (``.csv``,
``.jsonl`` / ``.ndjson`` / ``.json`` for JSON lines, ``.parquet``; CSV and JSON lines may be
gzip-compressed, recognised by their content, and named ``*.csv.gz`` / ``*.jsonl.gz``) or
from ``format=``. Each yields :class:`~leadscore.intake.frames.ReadChunk` objects: valid rows
in the canonical frame, bad rows in the rejects frame with their line, reason and raw text.
A file that cannot be read at all raises :class:`~leadscore.intake.frames.IntakeError` when
the function is called (missing file, unknown format) or, for a bad header, on the first chunk.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from pathlib import Path
from typing import BinaryIO

import polars as pl

from leadscore.intake.columns import Kind
from leadscore.intake.csv_rows import read_csv_chunks
from leadscore.intake.frames import (
    REJECTS_SCHEMA,
    IntakeError,
    ReadChunk,
    SourceChunk,
    truncate_raw,
)
from leadscore.intake.jsonl import read_jsonl_chunks
from leadscore.intake.parquet_rows import read_parquet_chunks
from leadscore.intake.validate import validate_contacts, validate_events

FORMATS = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl", "parquet": "parquet"}
"""Accepted ``format=`` values and file extensions, and the reader each one selects."""

_GZIP_MAGIC = b"\x1f\x8b"


def detect_format(path: str | os.PathLike[str], format: str | None = None) -> str:
    """``csv``, ``jsonl`` or ``parquet`` for ``path``, from ``format`` or the file extension."""
    if format is not None:
        chosen = FORMATS.get(format.lower().lstrip(".").removesuffix(".gz"))
        if chosen is None:
            raise IntakeError(f"unknown format {format!r}; use one of: csv, jsonl, ndjson, json, parquet")
        return chosen
    suffixes = [suffix.lower().lstrip(".") for suffix in Path(path).suffixes]
    if suffixes and suffixes[-1] == "gz":
        suffixes.pop()
    chosen = FORMATS.get(suffixes[-1]) if suffixes else None
    if chosen is None:
        raise IntakeError(
            f"cannot tell the format of {os.fspath(path)!r} from its name; "
            "name it .csv, .jsonl, .ndjson, .json or .parquet (optionally .gz), or pass format="
        )
    return chosen


def read_events(
    path: str | os.PathLike[str],
    *,
    chunk_rows: int = 250_000,
    received_at_ms: int,
    format: str | None = None,
) -> Iterator[ReadChunk]:
    """Canonical events of an import file, in chunks of about ``chunk_rows`` rows.

    ``received_at_ms`` is when the data arrived (the import moment): it is the time of rows
    without any timestamp, and the ``receivedAt`` of the clock-skew correction for rows with a
    ``sentAt`` but no ``receivedAt``.

    Example::

        for chunk in read_events("events.csv", received_at_ms=1_767_225_600_000):
            store(chunk.frame); report(chunk.rejects)
    """

    def validate(messages: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        return validate_events(messages, received_at_ms=received_at_ms)

    return _read(path, "events", chunk_rows, format, validate)


def read_contacts(
    path: str | os.PathLike[str],
    *,
    chunk_rows: int = 250_000,
    received_at_ms: int | None = None,
    format: str | None = None,
) -> Iterator[ReadChunk]:
    """Canonical contacts of an import file (identify messages, or ``userId`` + ``traits.*`` /
    ``account.*`` columns), in chunks of about ``chunk_rows`` rows.

    ``received_at_ms`` only serves the clock-skew correction of identifies that have a
    ``sentAt`` but no ``receivedAt``; contacts without any timestamp keep a null ``ts``.
    """

    def validate(messages: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        return validate_contacts(messages, received_at_ms=received_at_ms)

    return _read(path, "contacts", chunk_rows, format, validate)


def _read(
    path: str | os.PathLike[str],
    kind: Kind,
    chunk_rows: int,
    format: str | None,
    validate: Callable[[pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]],
) -> Iterator[ReadChunk]:
    """Check the call now; return the lazy chunk iterator."""
    file = Path(path)
    fmt = detect_format(file, format)
    if not file.is_file():
        raise IntakeError(f"no such file: {os.fspath(path)!r}")
    if chunk_rows < 1:
        raise IntakeError(f"chunk_rows must be at least 1, not {chunk_rows}")
    return _chunks(file, kind, fmt, chunk_rows, validate)


def _chunks(
    file: Path,
    kind: Kind,
    fmt: str,
    chunk_rows: int,
    validate: Callable[[pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]],
) -> Iterator[ReadChunk]:
    total_bytes = file.stat().st_size
    with ExitStack() as stack:
        if fmt == "parquet":
            sources: Iterator[SourceChunk] = read_parquet_chunks(
                file, kind=kind, chunk_rows=chunk_rows, total_bytes=total_bytes
            )
        else:
            raw = stack.enter_context(open(file, "rb"))
            stream = _decompressed(raw, stack)
            reader = read_csv_chunks if fmt == "csv" else read_jsonl_chunks
            sources = reader(stream, raw.tell, kind=kind, chunk_rows=chunk_rows)
        stack.enter_context(closing(sources))  # type: ignore[arg-type]  # stopped before the file closes
        for source in sources:
            frame, found = validate(source.messages)
            rows = found.get_column("_row").to_list()
            raw_text = [truncate_raw(text) for text in source.raw_rows(rows)] if rows else []
            rejects = pl.DataFrame(
                {"line": found.get_column("line"), "reason": found.get_column("reason"), "raw": raw_text},
                schema=REJECTS_SCHEMA,
            )
            yield ReadChunk(
                frame=frame,
                rejects=rejects,
                rows_read=frame.height + rejects.height,
                bytes_read=source.bytes_read,
                total_bytes=total_bytes,
            )


def _decompressed(raw: BinaryIO, stack: ExitStack) -> BinaryIO:
    """``raw`` itself, or a decompressing stream over it when it holds gzip data."""
    magic = raw.read(2)
    raw.seek(0)
    if magic != _GZIP_MAGIC:
        return raw
    return stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
