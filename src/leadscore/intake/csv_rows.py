"""CSV imports: the file cut into chunks of rows, each parsed by polars into a message frame.

The file is read in blocks and cut on row boundaries found with numpy: a newline ends a row
when an even number of double quotes precedes it in the chunk (RFC 4180 quoting, where a quote
inside a quoted field is doubled). The same pass gives, for each row, its physical line number
(quoted newlines included), its size in bytes and its number of fields, so a row with too many
or too few fields is rejected with its true line. Polars then parses the chunk with every column
as text. If polars disagrees with the cut (a stray quote in an unquoted field, say), that chunk
is parsed again by Python's :mod:`csv` module, which is slower but follows the same rules.

The delimiter is the one of comma, semicolon and tab that occurs most in the header (comma on
a tie). A UTF-8 byte order mark is ignored; invalid UTF-8 is replaced, not fatal.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import polars as pl

from leadscore.intake.columns import Kind, message_columns, plan_columns
from leadscore.intake.frames import IntakeError, SourceChunk

_NEWLINE, _QUOTE, _CR = 10, 34, 13
_MIN_BLOCK = 1 << 20
_DELIMITERS = (b",", b";", b"\t")


@dataclass(frozen=True, slots=True)
class _ParsedPiece:
    """The non-blank rows of a piece as a wide text frame, and where each row lies in the piece."""

    wide: pl.DataFrame  # _row, line, size, _fields, then one text column per header
    starts: np.ndarray  # byte offset of the row at each _row
    stops: np.ndarray
    next_line: int


def read_csv_chunks(
    stream: BinaryIO, position: Callable[[], int], *, kind: Kind, chunk_rows: int
) -> Iterator[SourceChunk]:
    """Message frames of ``chunk_rows`` rows (the last one shorter) from a CSV byte stream."""
    pieces = _pieces(stream, chunk_rows)
    first = next(pieces, b"")
    header_ends = _row_ends(first)
    cut = int(header_ends[0]) + 1 if len(header_ends) else len(first)
    header, rest = first[:cut], first[cut:]
    if header.startswith(b"\xef\xbb\xbf"):
        header = header[3:]
    if not header.strip():
        raise IntakeError("the CSV file has no header line (it is empty or starts with a blank line)")
    delimiter = max(_DELIMITERS, key=header.count).decode()
    names = next(csv.reader(io.StringIO(header.decode("utf-8", "replace"), newline=""), delimiter=delimiter))
    plan = plan_columns(names, kind)
    line = 1 + header.count(b"\n")
    for piece in itertools.chain([rest] if rest else [], pieces):
        parsed = _parse_piece(piece, names, delimiter, line)
        line = parsed.next_line
        messages = message_columns(parsed.wide, plan, _extra_columns(len(names)))
        yield SourceChunk(messages=messages, raw_rows=_raw_lookup(piece, parsed), bytes_read=position())


def _row_ends(buffer: bytes, *, inside_quotes: bool = False) -> np.ndarray:
    """Offsets of the newlines that end rows (not inside quotes), given the state at the start."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    newlines = np.flatnonzero(data == _NEWLINE)
    quotes = np.flatnonzero(data == _QUOTE)
    return newlines[(np.searchsorted(quotes, newlines) & 1) == int(inside_quotes)]


def _pieces(stream: BinaryIO, chunk_rows: int) -> Iterator[bytes]:
    """The stream cut after every ``chunk_rows`` rows; the first piece has one more (the header).

    Row ends are found once per block read, carrying the quote state from block to block.
    """
    buffer = b""
    ends = np.empty(0, dtype=np.int64)
    quotes = 0  # double quotes in ``buffer``
    eof = False
    wanted = chunk_rows + 1
    while not eof or buffer:
        while len(ends) < wanted and not eof:
            average = len(buffer) / len(ends) if len(ends) else 200.0
            block = stream.read(max(_MIN_BLOCK, int((wanted - len(ends)) * average * 1.1)))
            if not block:
                eof = True
                break
            ends = np.concatenate((ends, _row_ends(block, inside_quotes=bool(quotes & 1)) + len(buffer)))
            quotes += block.count(b'"')
            buffer += block
        cut = int(ends[wanted - 1]) + 1 if len(ends) >= wanted else len(buffer)
        piece, buffer = buffer[:cut], buffer[cut:]
        quotes -= piece.count(b'"')
        ends = ends[ends >= cut] - cut
        wanted = chunk_rows
        if piece:
            yield piece


def _parse_piece(piece: bytes, names: list[str], delimiter: str, first_line: int) -> _ParsedPiece:
    """The rows of ``piece`` (whose first physical line is ``first_line``)."""
    data = np.frombuffer(piece, dtype=np.uint8)
    newlines = np.flatnonzero(data == _NEWLINE)
    quotes = np.flatnonzero(data == _QUOTE)
    ends = newlines[(np.searchsorted(quotes, newlines) & 1) == 0]
    if not len(ends) or ends[-1] != len(piece) - 1:
        ends = np.append(ends, len(piece))
    starts = np.concatenate(([0], ends[:-1] + 1))
    stops = ends.copy()
    inside = stops > starts
    carriage = np.zeros(len(stops), dtype=bool)
    carriage[inside] = data[stops[inside] - 1] == _CR
    stops[carriage] -= 1
    delimiters = np.flatnonzero(data == ord(delimiter))
    outside = delimiters[(np.searchsorted(quotes, delimiters) & 1) == 0]
    fields = np.searchsorted(outside, stops) - np.searchsorted(outside, starts) + 1
    lines = first_line + np.searchsorted(newlines, starts)
    next_line = first_line + len(newlines)
    schema = {name: pl.String() for name in _unique(names)}
    try:
        wide = pl.read_csv(
            io.BytesIO(piece),
            has_header=False,
            schema=schema,
            separator=delimiter,
            quote_char='"',
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError:
        wide = None
    if wide is None or wide.height != len(starts):
        return _parse_piece_slowly(piece, schema, delimiter, first_line, next_line)
    spans = pl.DataFrame(
        {
            "_row": np.arange(len(starts), dtype=np.int64),
            "line": lines.astype(np.int64),
            "size": (stops - starts).astype(np.int64),
            "_fields": fields.astype(np.int64),
        }
    )
    wide = pl.concat([spans, wide], how="horizontal").filter(pl.col("size") > 0)
    return _ParsedPiece(wide=wide, starts=starts, stops=stops, next_line=next_line)


def _extra_columns(expected_fields: int) -> list[pl.Expr]:
    reason = pl.when(pl.col("_fields") != expected_fields).then(
        pl.format(f"expected {expected_fields} fields, found {{}}", pl.col("_fields"))
    )
    return [pl.col("_row"), pl.col("line"), pl.col("size"), reason.alias("pre_reason")]


def _parse_piece_slowly(
    piece: bytes, schema: dict[str, pl.DataType], delimiter: str, first_line: int, next_line: int
) -> _ParsedPiece:
    """The same rows, parsed one by one with :mod:`csv` (for malformed quoting)."""
    text = piece.decode("utf-8", "replace")
    offsets = [0]
    for physical in io.StringIO(text, newline="").readlines():
        offsets.append(offsets[-1] + len(physical.encode("utf-8")))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns: list[list[str | None]] = [[] for _ in schema]
    lines: list[int] = []
    fields: list[int] = []
    starts: list[int] = []
    stops: list[int] = []
    consumed = 0
    try:
        for row in reader:
            begin, consumed = consumed, reader.line_num
            if not row:
                continue
            lines.append(first_line + begin)
            fields.append(len(row))
            starts.append(offsets[min(begin, len(offsets) - 1)])
            stops.append(offsets[min(consumed, len(offsets) - 1)])
            for index, column in enumerate(columns):
                cell = row[index] if index < len(row) else None
                column.append(cell if cell else None)
    except csv.Error as error:
        raise IntakeError(f"unreadable CSV near line {first_line + consumed}: {error}") from error
    spans = pl.DataFrame(
        {
            "_row": list(range(len(lines))),
            "line": lines,
            "size": [stop - start for start, stop in zip(starts, stops, strict=True)],
            "_fields": fields,
        },
        schema={"_row": pl.Int64(), "line": pl.Int64(), "size": pl.Int64(), "_fields": pl.Int64()},
    )
    wide = pl.concat([spans, pl.DataFrame(dict(zip(schema, columns, strict=True)), schema=schema)], how="horizontal")
    return _ParsedPiece(wide=wide, starts=np.array(starts), stops=np.array(stops), next_line=next_line)


def _raw_lookup(piece: bytes, parsed: _ParsedPiece) -> Callable[[list[int]], list[str]]:
    """Raw text of rows by ``_row``, sliced from the chunk's bytes."""

    def raw_rows(rows: list[int]) -> list[str]:
        return [
            piece[int(parsed.starts[row]) : int(parsed.stops[row])].decode("utf-8", "replace").rstrip("\r\n")
            for row in rows
        ]

    return raw_rows


def _unique(names: list[str]) -> list[str]:
    """Column names made unique for polars (duplicates are refused by the header check anyway)."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}#{count}")
    return unique
