"""CSV pieces parsed exactly: row boundaries, physical lines and field counts found byte by byte.

This is the careful path of the CSV reader (:mod:`leadscore.intake.csv_rows`), taken for the
pieces the fast path (:mod:`leadscore.intake.csv_fast`) cannot vouch for: quoted newlines,
blank lines, rows with too few or too many fields, escaped quotes, invalid UTF-8.

A newline ends a row when an even number of double quotes precedes it in the piece (RFC 4180
quoting, where a quote inside a quoted field is doubled); numpy finds them all at once, and with
them each row's physical line number (quoted newlines included), its size in bytes and its
number of fields. Polars then parses the piece with every column as text. If polars disagrees
with the cut (a stray quote in an unquoted field, say), the piece is parsed again by Python's
:mod:`csv` module, which is slower but follows the same rules.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from leadscore.intake.frames import IntakeError

_NEWLINE, _QUOTE, _CR = 10, 34, 13
_SPAN_SCHEMA: dict[str, pl.DataType] = {
    "_row": pl.Int64(),
    "line": pl.Int64(),
    "size": pl.Int64(),
    "_fields": pl.Int64(),
}


@dataclass(frozen=True, slots=True)
class ParsedPiece:
    """The non-blank rows of a piece of a CSV file as a wide text frame.

    ``wide`` holds ``_row`` (the row's position in the piece, blank lines included), ``line``,
    ``size`` (bytes of the source row), ``_fields`` (its number of fields), then one text
    column per header. ``raw_rows`` gives the source text of rows by ``_row``. ``clean_text``
    says that no cell holds a quote, a backslash or a control character.
    """

    wide: pl.DataFrame
    raw_rows: Callable[[list[int]], list[str]]
    next_line: int
    clean_text: bool = False


def row_ends(buffer: bytes) -> np.ndarray:
    """Offsets of the newlines that end rows (not inside quotes) in ``buffer``, which starts a row."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    newlines = np.flatnonzero(data == _NEWLINE)
    quotes = np.flatnonzero(data == _QUOTE)
    return newlines[(np.searchsorted(quotes, newlines) & 1) == 0]


def parse_exactly(piece: bytes, schema: dict[str, pl.DataType], delimiter: str, first_line: int) -> ParsedPiece:
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
        return _parse_with_csv_module(piece, schema, delimiter, first_line, next_line)
    spans = pl.DataFrame(
        {
            "_row": np.arange(len(starts), dtype=np.int64),
            "line": lines.astype(np.int64),
            "size": (stops - starts).astype(np.int64),
            "_fields": fields.astype(np.int64),
        }
    )
    wide = pl.concat([spans, wide], how="horizontal").filter(pl.col("size") > 0)
    return ParsedPiece(wide=wide, raw_rows=raw_lookup(piece, starts, stops), next_line=next_line)


def _parse_with_csv_module(
    piece: bytes, schema: dict[str, pl.DataType], delimiter: str, first_line: int, next_line: int
) -> ParsedPiece:
    """The same rows, parsed one by one with :mod:`csv` (for malformed quoting)."""
    text = piece.decode("utf-8", "replace")
    offsets = [0]  # byte offset where each line (as the csv module splits them) starts
    newlines = [0]  # newlines before it: a lone \r splits lines for the csv module, not for us
    for physical in io.StringIO(text, newline="").readlines():
        offsets.append(offsets[-1] + len(physical.encode("utf-8")))
        newlines.append(newlines[-1] + physical.count("\n"))
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
            lines.append(first_line + newlines[min(begin, len(newlines) - 1)])
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
        schema=_SPAN_SCHEMA,
    )
    wide = pl.concat([spans, pl.DataFrame(dict(zip(schema, columns, strict=True)), schema=schema)], how="horizontal")
    return ParsedPiece(
        wide=wide, raw_rows=raw_lookup(piece, np.array(starts), np.array(stops)), next_line=next_line
    )


def raw_lookup(piece: bytes, starts: np.ndarray, stops: np.ndarray) -> Callable[[list[int]], list[str]]:
    """Raw text of rows by ``_row``, sliced from the piece's bytes."""

    def raw_rows(rows: list[int]) -> list[str]:
        return [
            piece[int(starts[row]) : int(stops[row])].decode("utf-8", "replace").rstrip("\r\n") for row in rows
        ]

    return raw_rows
