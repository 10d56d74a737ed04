"""Reading any exported table for ``leadscore train``: a CSV whose delimiter is sniffed, values
that mean "not filled in" turned into missing values, numbers recognised, and a target column
of yes/no, true/false, 1/0 (or the like) turned into 0/1 outcomes.

The one file reader of the analytics package: everything else here works on the frame it
returns. Cells are read as text first, so a column is numeric only when every filled cell of it
is a number.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

DELIMITERS = ",;\t|"
SNIFF_BYTES = 64 * 1024

POSITIVE = {"1", "1.0", "yes", "y", "true", "t", "converted", "won", "win", "positive"}
NEGATIVE = {"0", "0.0", "no", "n", "false", "f", "not converted", "lost", "loss", "negative"}


class TableError(ValueError):
    """A table that cannot be read or trained on as asked; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Outcomes:
    values: np.ndarray  # int8 0/1 for each kept row
    kept: np.ndarray  # bool per row of the table: the target was filled in
    positive_label: str  # what the data calls a conversion, e.g. "yes" or "1"


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a CSV sample: one of ``, ; TAB |`` (comma when nothing else fits)."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def read_table(path: str | Path, *, missing: Iterable[str] = (), delimiter: str | None = None) -> pl.DataFrame:
    """The table in ``path`` with its delimiter sniffed (unless given), every cell trimmed, empty
    cells and cells equal to one of ``missing`` (e.g. "Select", "N/A") as nulls, and the columns
    whose filled cells are all numbers as Float64."""
    file = Path(path)
    if not file.is_file():
        raise TableError(f"no such file: {file}")
    with file.open("rb") as handle:
        head = handle.read(SNIFF_BYTES).decode("utf-8-sig", errors="replace")
    if not head.strip():
        raise TableError(f"{file} is empty")
    separator = delimiter or sniff_delimiter(head)
    try:
        frame = pl.read_csv(file, separator=separator, infer_schema_length=0, encoding="utf8-lossy",
                            truncate_ragged_lines=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as error:
        raise TableError(f"cannot read {file} as CSV (delimiter {separator!r}): {error}") from None
    markers = [value.strip() for value in missing if value.strip()]
    frame = frame.with_columns(_cleaned(name, markers) for name in frame.columns)
    return frame.with_columns(
        pl.col(name).cast(pl.Float64) for name in frame.columns if _all_numbers(frame.get_column(name))
    )


def _cleaned(name: str, markers: list[str]) -> pl.Expr:
    value = pl.col(name).str.strip_chars()
    blank = value.is_null() | (value == "")
    if markers:
        blank = blank | value.is_in(markers)
    return pl.when(blank).then(None).otherwise(value).alias(name)


def _all_numbers(column: pl.Series) -> bool:
    filled = column.drop_nulls()
    if filled.is_empty():
        return False
    converted = filled.cast(pl.Float64, strict=False)
    return converted.null_count() == 0 and bool(converted.is_finite().all())


def outcomes(frame: pl.DataFrame, target: str) -> Outcomes:
    """The 0/1 outcome in column ``target``: numbers 0/1, or words like yes/no, true/false,
    won/lost (any case). Rows without a target are left out (``kept`` says which)."""
    if target not in frame.columns:
        close = [name for name in frame.columns if name.lower() == target.lower()]
        hint = f" (did you mean {close[0]!r}?)" if close else f"; columns: {', '.join(frame.columns[:40])}"
        raise TableError(f"no column {target!r} in the table{hint}")
    column = frame.get_column(target)
    kept = column.is_not_null().to_numpy()
    text = column.drop_nulls().cast(pl.Utf8).str.to_lowercase()
    levels = sorted(set(text.to_list()))
    unknown = [level for level in levels if level not in POSITIVE | NEGATIVE]
    if unknown or not levels:
        shown = ", ".join(repr(level) for level in (unknown or levels)[:5])
        raise TableError(f"target column {target!r} must hold two outcomes like yes/no, true/false or 1/0; "
                         f"found {shown or 'no values'}")
    values = text.is_in(sorted(POSITIVE)).cast(pl.Int8).to_numpy()
    positive = next((level for level in levels if level in POSITIVE), "1")
    return Outcomes(values, kept, positive)


def time_order(column: pl.Series) -> np.ndarray:
    """Seconds (or the plain numbers) of a time column, for ordering rows; ISO 8601 dates and
    times or numbers. A cell that is neither is an error; a missing one sorts first."""
    if column.dtype == pl.Float64:
        values = column.to_numpy()
    else:
        text = column.cast(pl.Utf8)
        parsed = text.str.to_datetime(strict=False, time_zone="UTC")
        bad = parsed.is_null() & text.is_not_null()
        if bad.any():
            example = text.filter(bad)[0]
            raise TableError(f"time column {column.name!r} has {int(bad.sum())} cells that are not times, "
                             f"e.g. {example!r}: use ISO 8601 like 2026-01-31 or 2026-01-31T09:00:00Z")
        values = parsed.dt.epoch("ms").cast(pl.Float64).to_numpy() / 1000.0
    return np.where(np.isnan(values), -np.inf, values)
