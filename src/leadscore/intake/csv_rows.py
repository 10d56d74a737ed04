"""CSV imports: the file cut into pieces of whole rows, parsed by polars into message frames.

The header is the first row; the delimiter is the one of comma, semicolon and tab that occurs
most in it (comma on a tie). A UTF-8 byte order mark is ignored; invalid UTF-8 is replaced,
not fatal.

The rest of the file is read in large blocks (about one chunk of rows each), cut after the last
newline that ends a row (one preceded by an even number of double quotes: RFC 4180 quoting).
Each piece is parsed by the fast path (:mod:`leadscore.intake.csv_fast`: polars alone, checked
by counting bytes) or, when that cannot vouch for it (quoted newlines, blank lines, wrong field
counts, invalid UTF-8…), by the exact path (:mod:`leadscore.intake.csv_exact`), which finds
every row's physical line number and field count. Both give the same rows. Parsed rows are then
regrouped into chunks of exactly ``chunk_rows`` records (the last one shorter).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import polars as pl

from leadscore.intake.columns import ColumnPlan, Kind, message_columns, plan_columns
from leadscore.intake.csv_exact import ParsedPiece, parse_exactly, row_ends
from leadscore.intake.csv_fast import parse_quickly
from leadscore.intake.frames import IntakeError, SourceChunk

_MIN_BLOCK = 1 << 20
_DELIMITERS = (b",", b";", b"\t")
_FIRST_GUESS_ROW_BYTES = 200


@dataclass(frozen=True, slots=True)
class _Pending:
    """Parsed rows waiting to be handed out: ``piece.wide`` from row ``start`` on."""

    piece: ParsedPiece
    start: int
    base: int  # added to the piece's ``_row`` values to make them unique within the file


def read_csv_chunks(
    stream: BinaryIO, position: Callable[[], int], *, kind: Kind, chunk_rows: int
) -> Iterator[SourceChunk]:
    """Message frames of ``chunk_rows`` rows (the last one shorter) from a CSV byte stream."""
    header = _header(stream)
    delimiter = max(_DELIMITERS, key=header.count).decode()
    names = next(csv.reader(io.StringIO(header.decode("utf-8", "replace"), newline=""), delimiter=delimiter))
    plan = plan_columns(names, kind)
    schema: dict[str, pl.DataType] = {name: pl.String() for name in _unique(names)}
    extra = _extra_columns(len(names))
    line = 1 + header.count(b"\n")
    pending: list[_Pending] = []
    seen = [0, 0]  # bytes and rows parsed so far, to size the next block
    buffered = 0  # rows in ``pending``
    base = 0

    def wanted_bytes() -> float:
        average = seen[0] / seen[1] if seen[1] else _FIRST_GUESS_ROW_BYTES
        return (chunk_rows - buffered) * average * 1.02

    for piece in _pieces(stream, wanted_bytes):
        parsed = parse_quickly(piece, schema, delimiter, line) or parse_exactly(piece, schema, delimiter, line)
        line = parsed.next_line
        height = parsed.wide.height
        seen[0] += len(piece)
        seen[1] += height
        if height:
            pending.append(_Pending(parsed, 0, base))
            buffered += height
            base += int(parsed.wide.get_column("_row").max()) + 1  # type: ignore[arg-type]
        while buffered >= chunk_rows:
            rows, pending = _take(pending, chunk_rows)
            buffered -= chunk_rows
            yield _source(rows, plan, extra, position)
    if buffered:
        rows, pending = _take(pending, buffered)
        yield _source(rows, plan, extra, position)


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


def _pieces(stream: BinaryIO, wanted_bytes: Callable[[], float]) -> Iterator[bytes]:
    """The rest of the stream in pieces of whole rows of about ``wanted_bytes()`` bytes each.

    A block is read, completed to the end of its last line, and cut after its last row end;
    what follows the cut (part of a row with a quoted newline) starts the next piece. The last
    piece gets a final newline if it lacks one and is not inside quotes.
    """
    carry = b""
    while True:
        block = stream.read(max(_MIN_BLOCK, int(wanted_bytes())))
        if not block:
            if carry:
                if not carry.endswith(b"\n") and not _count(carry, b'"') % 2:
                    carry += b"\n"
                yield carry
            return
        tail = b"" if block.endswith(b"\n") else stream.readline()
        data = b"".join((carry, block, tail)) if carry or tail else block
        cut = _last_row_end(data) + 1
        if cut == len(data):
            carry = b""
            yield data
        elif cut:
            carry = data[cut:]
            yield data[:cut]
        else:
            carry = data


def _count(data: bytes, byte: bytes) -> int:
    """How many times ``byte`` occurs in ``data`` (vectorised; faster than ``bytes.count``)."""
    codes = pl.Series("b", np.frombuffer(data, dtype=np.uint8))
    return int((codes == ord(byte)).sum())


def _last_row_end(data: bytes) -> int:
    """Offset of the last newline in ``data`` that ends a row, or -1."""
    last = data.rfind(b"\n")
    if last < 0 or not _count(memoryview(data)[:last], b'"') % 2:
        return last
    ends = row_ends(data)
    return int(ends[-1]) if len(ends) else -1


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
    rows: list[tuple[pl.DataFrame, _Pending]], plan: ColumnPlan, extra: list[pl.Expr], position: Callable[[], int]
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

    return SourceChunk(messages=messages, raw_rows=raw_rows, bytes_read=position())


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
