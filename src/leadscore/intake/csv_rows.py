"""CSV imports: the file cut into pieces of whole rows, parsed by polars into message frames.

The header is the first row; the delimiter is the one of comma, semicolon and tab that occurs
most in it (comma on a tie). A UTF-8 byte order mark is ignored; invalid UTF-8 is replaced,
not fatal.

The rest of the file is read and parsed in pieces of whole rows by
:class:`~leadscore.intake.csv_pieces.PieceReader`: a fast path (polars alone, checked by
counting bytes) for ordinary pieces, an exact path that finds every row's physical line number
and field count for the others (quoted newlines, blank lines, wrong field counts, invalid
UTF-8…). Both give the same rows. Parsed rows are then regrouped into chunks of exactly
``chunk_rows`` records (the last one shorter) and turned into message frames.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import polars as pl

from leadscore.intake.columns import ColumnPlan, Kind, message_columns, plan_columns
from leadscore.intake.csv_exact import ParsedPiece
from leadscore.intake.csv_pieces import PieceReader
from leadscore.intake.frames import IntakeError, SourceChunk

_DELIMITERS = (b",", b";", b"\t")


@dataclass(frozen=True, slots=True)
class _Pending:
    """Parsed rows waiting to be handed out: ``piece.wide`` from row ``start`` on."""

    piece: ParsedPiece
    start: int
    base: int  # added to the piece's ``_row`` values to make them unique within the file


def read_csv_chunks(
    stream: BinaryIO, position: Callable[[], int], *, kind: Kind, chunk_rows: int
) -> Iterator[SourceChunk]:
    """Message frames of ``chunk_rows`` rows (the last one shorter) from a CSV byte stream.

    While a chunk is being turned into messages (and validated by the caller), a worker thread
    already reads and parses the next piece of the file: both mostly run in polars, outside the
    GIL, so reading overlaps the rest of the work.
    """
    header = _header(stream)
    delimiter = max(_DELIMITERS, key=header.count).decode()
    names = next(csv.reader(io.StringIO(header.decode("utf-8", "replace"), newline=""), delimiter=delimiter))
    plan = plan_columns(names, kind)
    extra = _extra_columns(len(names))
    reader = PieceReader(
        stream,
        position,
        schema={name: pl.String() for name in _unique(names)},
        delimiter=delimiter,
        first_line=1 + header.count(b"\n"),
        rows_per_piece=max(chunk_rows, 1),
    )
    pending: list[_Pending] = []
    buffered = 0  # rows in ``pending``
    base = 0
    reached = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="leadscore-csv") as worker:
        upcoming = worker.submit(reader.next)
        while (found := upcoming.result()) is not None:
            upcoming = worker.submit(reader.next)
            parsed, reached = found
            if parsed.wide.height:
                pending.append(_Pending(parsed, 0, base))
                buffered += parsed.wide.height
                base += int(parsed.wide.get_column("_row").max()) + 1  # type: ignore[arg-type]
            while buffered >= chunk_rows:
                rows, pending = _take(pending, chunk_rows)
                buffered -= chunk_rows
                yield _source(rows, plan, extra, reached)
    if buffered:
        rows, pending = _take(pending, buffered)
        yield _source(rows, plan, extra, position())


def _header(stream: BinaryIO) -> bytes:
    """The header row (the first row, whose quoted names may span lines), without a BOM."""
    header = stream.readline()
    while header.count(b'"') % 2 and (more := stream.readline()):
        header += more
    if header.startswith(b"\xef\xbb\xbf"):
        header = header[3:]
    if not header.strip():
        raise IntakeError("the CSV file has no header line (it is empty or starts with a blank line)")
    return header


def _take(pending: list[_Pending], count: int) -> tuple[list[tuple[pl.DataFrame, _Pending]], list[_Pending]]:
    """The first ``count`` pending rows (as slices, with where they come from) and what remains."""
    taken: list[tuple[pl.DataFrame, _Pending]] = []
    remaining = list(pending)
    while count:
        item = remaining[0]
        available = item.piece.wide.height - item.start
        used = min(available, count)
        taken.append((item.piece.wide.slice(item.start, used), item))
        count -= used
        if used == available:
            remaining.pop(0)
        else:
            remaining[0] = _Pending(item.piece, item.start + used, item.base)
    return taken, remaining


def _source(
    rows: list[tuple[pl.DataFrame, _Pending]], plan: ColumnPlan, extra: list[pl.Expr], bytes_read: int
) -> SourceChunk:
    """The message frame of the taken rows, with ``_row`` made unique across the pieces."""
    frames = [frame.with_columns(pl.col("_row") + item.base) for frame, item in rows]
    wide = frames[0] if len(frames) == 1 else pl.concat(frames)
    clean = all(item.piece.clean_text for _, item in rows)
    messages = message_columns(wide, plan, extra, clean_text=clean)
    bases = [item.base for _, item in rows]
    lookups = [item.piece.raw_rows for _, item in rows]

    def raw_rows(wanted: list[int]) -> list[str]:
        owners = np.searchsorted(bases, wanted, side="right") - 1
        texts: dict[int, str] = {}
        for index in np.unique(owners).tolist():
            mine = [row for row, owner in zip(wanted, owners.tolist(), strict=True) if owner == index]
            texts.update(zip(mine, lookups[index]([row - bases[index] for row in mine]), strict=True))
        return [texts[row] for row in wanted]

    return SourceChunk(messages=messages, raw_rows=raw_rows, bytes_read=bytes_read)


def _extra_columns(expected_fields: int) -> list[pl.Expr]:
    reason = pl.when(pl.col("_fields") != expected_fields).then(
        pl.format(f"expected {expected_fields} fields, found {{}}", pl.col("_fields"))
    )
    return [pl.col("_row"), pl.col("line"), pl.col("size"), reason.alias("pre_reason")]


def _unique(names: list[str]) -> list[str]:
    """Column names made unique for polars (duplicates are refused by the header check anyway)."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}#{count}")
    return unique
