"""Timestamps of import rows, parsed vectorially into milliseconds since the epoch (UTC).

Accepted: ISO 8601 date-times with ``Z`` or a numeric offset (``+01:00`` / ``+0100``), with or
without fractional seconds, with ``T`` or a space between date and time; a date-time without
a zone is read as UTC; a bare date is midnight UTC. Numbers are epoch times: seconds when
their magnitude is below 10^11 (that is, before the year 5138), milliseconds otherwise.
Anything else parses to null, which the validator reports as a bad timestamp.
"""

from __future__ import annotations

import polars as pl

_ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M%:z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
)
_EPOCH_NUMBER = r"^[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?$"
_SECONDS_BELOW = 1e11


def parse_timestamp_ms(text: pl.Expr) -> pl.Expr:
    """Milliseconds since the epoch for each timestamp text; null when it is not a timestamp."""
    stripped = text.str.strip_chars()
    iso = stripped.str.replace(r"[Zz]$", "+00:00").str.replace(r"^(\d{4}-\d{2}-\d{2})[ t]", "${1}T")
    attempts = [
        iso.str.to_datetime(fmt, strict=False, time_unit="ms", time_zone="UTC").dt.epoch("ms")
        for fmt in _ISO_FORMATS
    ]
    number = pl.when(stripped.str.contains(_EPOCH_NUMBER)).then(stripped.cast(pl.Float64, strict=False))
    epoch_ms = (
        pl.when(number.abs() >= _SECONDS_BELOW).then(number).otherwise(number * 1000.0).round(0).cast(pl.Int64, strict=False)
    )
    return pl.coalesce(epoch_ms, *attempts)
