"""Parquet imports: the same columns as the CSV shape (dotted names), read in row batches.

Typed columns are turned into the text a CSV would hold: numbers and booleans as their
literal (so they become JSON numbers and booleans inside objects), date-times as ISO 8601 in
UTC. List and struct columns under an object path (``properties.items``) are kept as JSON
values. A top-level field (``userId``, ``timestamp``…) may not be a list or a struct. Line
numbers are row positions counted from 1; progress is the share of rows read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import polars as pl
import pyarrow.parquet as pq

from leadscore.intake.columns import Kind, message_columns, plan_columns
from leadscore.intake.frames import IntakeError, SourceChunk


def read_parquet_chunks(path: Path, *, kind: Kind, chunk_rows: int, total_bytes: int) -> Iterator[SourceChunk]:
    """Message frames of up to ``chunk_rows`` rows from a Parquet file."""
    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for a file that is not Parquet
        raise IntakeError(f"{path} is not a readable Parquet file: {error}") from error
    names = parquet.schema_arrow.names
    plan = plan_columns(names, kind)
    for column in plan.fields.values():
        if pl.from_arrow(parquet.schema_arrow.empty_table()).schema[column].is_nested():
            raise IntakeError(f"column {column!r} must hold text, numbers or times, not a list or struct")
    total_rows = max(parquet.metadata.num_rows, 1)
    offset = 0
    for batch in parquet.iter_batches(batch_size=chunk_rows, columns=plan.source_columns or None):
        wide = _as_text(pl.DataFrame(pl.from_arrow(batch)))
        height = wide.height
        extra = [
            pl.int_range(0, height, dtype=pl.Int64).alias("_row"),
            pl.int_range(offset + 1, offset + height + 1, dtype=pl.Int64).alias("line"),
            _row_size(wide).alias("size"),
            pl.lit(None, dtype=pl.String).alias("pre_reason"),
        ]
        messages = message_columns(wide, plan, extra)
        offset += height
        yield SourceChunk(
            messages=messages,
            raw_rows=_raw_lookup(wide),
            bytes_read=min(total_bytes, total_bytes * offset // total_rows),
        )


def _as_text(wide: pl.DataFrame) -> pl.DataFrame:
    """Primitive columns as text; times as ISO 8601 UTC; lists and structs left as they are."""
    exprs = []
    for name, dtype in wide.schema.items():
        cell = pl.col(name)
        if dtype == pl.String or dtype.is_nested():
            exprs.append(cell)
        elif isinstance(dtype, pl.Datetime):
            utc = cell.dt.replace_time_zone("UTC") if dtype.time_zone is None else cell.dt.convert_time_zone("UTC")
            exprs.append(utc.dt.to_string("%Y-%m-%dT%H:%M:%S%.3fZ").alias(name))
        elif dtype == pl.Date:
            exprs.append(cell.dt.to_string("%Y-%m-%d").alias(name))
        elif dtype == pl.Boolean:
            exprs.append(pl.when(cell).then(pl.lit("true")).when(cell.not_()).then(pl.lit("false")).alias(name))
        else:
            exprs.append(cell.cast(pl.String).alias(name))
    return wide.select(exprs)


def _row_size(wide: pl.DataFrame) -> pl.Expr:
    """Approximate encoded size of each row: the bytes of its cells."""
    sizes = []
    for name, dtype in wide.schema.items():
        text = pl.struct(pl.col(name).alias("v")).struct.json_encode() if dtype.is_nested() else pl.col(name)
        sizes.append(text.str.len_bytes().fill_null(0).cast(pl.Int64))
    return pl.sum_horizontal(sizes) if sizes else pl.lit(0, dtype=pl.Int64)


def _raw_lookup(wide: pl.DataFrame) -> Callable[[list[int]], list[str]]:
    """Raw text of rows by position: the row as a JSON object."""

    def raw_rows(rows: list[int]) -> list[str]:
        return [orjson.dumps(wide.row(row, named=True), default=str).decode() for row in rows]

    return raw_rows
