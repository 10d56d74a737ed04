"""CSV pieces parsed fast: polars alone, vouched for by counting bytes.

Most CSV files have one row per physical line, every row with all its fields, and no quote,
backslash or control character inside a cell. For such a piece, polars' parse is all there is
to do: the row at position ``i`` is on line ``first_line + i``. This module checks that a piece
is one of those, with a few whole-piece counts instead of a byte-by-byte scan:

* polars parses the piece strictly (valid UTF-8, no row with too many fields) into as many
  rows as the piece has newlines, so no newline is inside a quoted field;
* the bytes add up: the piece's length equals the bytes of all the cells, plus one delimiter
  between fields of every row, plus the quotes, the ``\\r`` of ``\\r\\n`` line ends and the
  newlines. A row with too few fields or a blank line (which polars pads with nulls) leaves the
  sum short, and so does any quote kept inside a cell; nothing can make it long. When it is
  short only because cells hold (doubled) quotes, counting those quotes balances it.

A piece that fails a check is handed back (``None``) to the exact path,
:mod:`leadscore.intake.csv_exact`. The same counts tell whether any cell may hold a character
that JSON must escape (``clean_text``).

``size`` (bytes of the source row, for the 32 KB message limit) is the bytes of the row's cells
plus its delimiters; the quotes around quoted fields are not counted. Rows whose cells come
near the limit get their exact size from the newline positions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import polars as pl

from leadscore.intake.csv_exact import ParsedPiece
from leadscore.intake.frames import MAX_MESSAGE_BYTES

_NEWLINE, _QUOTE, _CR = 10, 34, 13


class ByteCounts(NamedTuple):
    """How many control bytes (below 32) and double quotes a piece holds."""

    controls: int
    quotes: int


def byte_counts(piece: bytes) -> ByteCounts:
    """The :class:`ByteCounts` of ``piece``."""
    codes = pl.Series("b", np.frombuffer(piece, dtype=np.uint8)).to_frame()
    byte = pl.col("b")
    return ByteCounts(*codes.select((byte < 32).sum().alias("controls"), (byte == _QUOTE).sum().alias("quotes")).row(0))


def parse_quickly(
    piece: bytes,
    schema: dict[str, pl.DataType],
    delimiter: str,
    first_line: int,
    counts: ByteCounts | None = None,
) -> ParsedPiece | None:
    """The rows of ``piece`` (a whole number of rows ending with a newline), or ``None`` when the
    piece needs the exact path. ``counts`` are the piece's :class:`ByteCounts` if known."""
    fields = len(schema)
    if fields < 2 or not piece.endswith(b"\n"):
        return None
    controls, quotes = counts if counts is not None else byte_counts(piece)
    try:
        wide = pl.read_csv(
            piece,
            has_header=False,
            schema=schema,
            separator=delimiter,
            quote_char='"',
            null_values=[""],
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError:
        return None
    rows = wide.height
    separators = rows * (fields - 1)
    # Control bytes beyond the line ends (and tab delimiters) are \r of \r\n or inside cells.
    newlines, carriage_returns = rows, 0
    cell_controls = controls - rows - (separators if delimiter == "\t" else 0)
    if cell_controls:
        codes = pl.Series("b", np.frombuffer(piece, dtype=np.uint8)).to_frame()
        byte = pl.col("b")
        newlines, carriage_returns = codes.select(
            (byte == _NEWLINE).sum().alias("newlines"),
            ((byte == _CR) & (byte.shift(-1) == _NEWLINE)).sum().alias("crlf"),
        ).row(0)
        cell_controls -= newlines - rows + carriage_returns
    if newlines != rows:  # newlines inside quoted cells, or blank lines polars skipped
        return None
    row_bytes = wide.select(pl.sum_horizontal(pl.col(name).str.len_bytes().fill_null(0) for name in schema)).to_series()
    unaccounted = len(piece) - int(row_bytes.sum()) - quotes - carriage_returns - newlines - separators
    quotes_in_cells = 0
    if unaccounted < 0 and quotes:
        quotes_in_cells = wide.select(
            pl.sum_horizontal(pl.col(name).str.count_matches('"', literal=True).sum() for name in schema)
        ).item()
        unaccounted += quotes_in_cells
    if unaccounted != 0:
        return None
    sizes = row_bytes.cast(pl.Int64) + (fields - 1)
    if rows and int(row_bytes.max()) * 2 + 3 * fields > MAX_MESSAGE_BYTES:  # type: ignore[arg-type]
        starts, stops = _row_spans(piece)
        sizes = pl.Series(stops - starts, dtype=pl.Int64)
    wide = wide.select(
        pl.int_range(rows, dtype=pl.Int64).alias("_row"),
        pl.int_range(first_line, first_line + rows, dtype=pl.Int64).alias("line"),
        sizes.alias("size"),
        pl.lit(fields, dtype=pl.Int64).alias("_fields"),
        pl.all(),
    )
    escapes = piece.find(b"\\") >= 0 or piece.find(b"\x7f") >= 0
    return ParsedPiece(
        wide=wide,
        raw_rows=_lazy_raw_lookup(piece),
        next_line=first_line + newlines,
        clean_text=quotes_in_cells == 0 and cell_controls == 0 and not escapes,
    )


def _row_spans(piece: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop offsets of each row of a piece with one row per line (stops exclude the
    line end, ``\\r\\n`` or ``\\n``)."""
    data = np.frombuffer(piece, dtype=np.uint8)
    ends = np.flatnonzero(data == _NEWLINE)
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    stops = ends.astype(np.int64)
    carriage = np.zeros(len(stops), dtype=bool)
    inside = stops > starts
    carriage[inside] = data[stops[inside] - 1] == _CR
    return starts, stops - carriage


def _lazy_raw_lookup(piece: bytes) -> Callable[[list[int]], list[str]]:
    """Raw text of rows by ``_row``; the row offsets are only found if a row is asked for."""
    spans: list[tuple[np.ndarray, np.ndarray]] = []

    def raw_rows(rows: list[int]) -> list[str]:
        if not rows:
            return []
        if not spans:
            spans.append(_row_spans(piece))
        starts, stops = spans[0]
        return [piece[int(starts[row]) : int(stops[row])].decode("utf-8", "replace") for row in rows]

    return raw_rows
