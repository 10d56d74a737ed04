"""Durations in the scoring model file: half-lives and frequency-limit windows.

A duration is written ``N`` followed by a unit: ``s`` (seconds), ``m`` (minutes), ``h`` (hours),
``d`` (days) or ``w`` (weeks), where ``N`` is a positive integer or decimal (``30d``, ``1.5h``).
``never`` means "no decay" (or "no window") and is returned as ``None``. Inside the core a
duration is a number of seconds (float).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

UNIT_SECONDS: dict[str, float] = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
DURATION_HINT = "use Ns, Nm, Nh, Nd, Nw or never"

_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?|\.\d+)(?P<unit>[smhdw])")


def parse_duration(text: str | int | float) -> float | None:
    """Seconds in a duration like ``30d``; ``None`` for ``never``.

    A bare number (not a string) is taken as seconds, for programmatic callers; the model file
    itself always writes a unit. Raises ``ValueError`` naming the bad text otherwise.
    """
    if isinstance(text, bool):
        raise ValueError(f"bad duration {text!r} ({DURATION_HINT})")
    if isinstance(text, int | float):
        if not math.isfinite(text) or text <= 0:
            raise ValueError(f"bad duration {text!r}: must be a positive number of seconds")
        return float(text)
    if not isinstance(text, str):
        raise ValueError(f"bad duration {text!r} ({DURATION_HINT})")
    stripped = text.strip()
    if stripped.lower() == "never":
        return None
    match = _DURATION.fullmatch(stripped)
    if match is None:
        raise ValueError(f"bad duration {text!r} ({DURATION_HINT})")
    seconds = float(match.group("n")) * UNIT_SECONDS[match.group("unit")]
    if seconds <= 0:
        raise ValueError(f"bad duration {text!r}: must be longer than zero")
    return seconds


def format_duration(seconds: float | None) -> str:
    """The shortest model-file spelling of a duration: ``2592000`` -> ``30d``, ``None`` -> ``never``."""
    if seconds is None:
        return "never"
    for unit in ("w", "d", "h", "m"):
        count = seconds / UNIT_SECONDS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{Decimal(repr(float(seconds))):f}s"
