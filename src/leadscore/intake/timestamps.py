"""Timestamps of import rows, parsed vectorially into milliseconds since the epoch (UTC).

Accepted: ISO 8601 date-times with ``Z`` or a numeric offset (``+01:00`` / ``+0100``), with or
without fractional seconds, with ``T`` or a space between date and time; a date-time without
a zone is read as UTC; a bare date is midnight UTC. Numbers are epoch times: seconds when
their magnitude is below 10^11 (that is, before the year 5138), milliseconds otherwise.
Anything else parses to null, which the validator reports as a bad timestamp.

Speed: a column where every value is a standard ISO 8601 time with a zone is parsed in one
Arrow cast (tens of nanoseconds a value). Otherwise the column is parsed in stages (epoch
numbers, then one chrono format after another), each stage only on the values still unparsed.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

_ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M%:z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
)
_EPOCH_NUMBER = r"^[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?$"
_SECONDS_BELOW = 1e11
_NS_PER_MS = 1_000_000


def parse_timestamps_ms(text: pl.Series) -> pl.Series:
    """Milliseconds since the epoch (Int64) for each timestamp text; null where it is not one."""
    name = text.name
    if text.null_count() == text.len():
        return pl.repeat(None, text.len(), dtype=pl.Int64, eager=True).alias(name)
    try:
        instants = pc.cast(text.to_arrow(), pa.timestamp("ns", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _parse_in_stages(text)
    nanoseconds = pl.Series(name, instants).cast(pl.Int64)
    return nanoseconds.to_frame().select(pl.col(name).floordiv(_NS_PER_MS)).to_series()


def _parse_in_stages(text: pl.Series) -> pl.Series:
    name = text.name
    frame = text.to_frame().select(pl.col(name).str.strip_chars().alias("text"))
    stripped = pl.col("text")
    number = pl.when(stripped.str.contains(_EPOCH_NUMBER)).then(stripped.cast(pl.Float64, strict=False))
    epoch_ms = (
        pl.when(number.abs() >= _SECONDS_BELOW)
        .then(number)
        .otherwise(number * 1000.0)
        .round(0)
        .cast(pl.Int64, strict=False)
    )
    frame = frame.with_columns(epoch_ms.alias("ms"), pl.int_range(pl.len()).alias("position"))
    iso = stripped.str.replace(r"[Zz]$", "+00:00").str.replace(r"^(\d{4}-\d{2}-\d{2})[ t]", "${1}T")
    for fmt in _ISO_FORMATS:
        pending = frame.filter(pl.col("ms").is_null() & pl.col("text").is_not_null())
        if pending.height == 0:
            break
        parsed = pending.select(
            "position",
            iso.str.to_datetime(fmt, strict=False, time_unit="ms", time_zone="UTC").dt.epoch("ms").alias("found"),
        )
        frame = frame.join(parsed, on="position", how="left").select(
            "text", "position", pl.coalesce("ms", "found").alias("ms")
        )
    return frame.sort("position").get_column("ms").alias(name)
