"""Durations of the model file: ``30d``, ``1.5h``, ``never``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadscore.core.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45.0),
        ("5m", 300.0),
        ("1.5h", 5400.0),
        ("30d", 2_592_000.0),
        ("2w", 1_209_600.0),
        (".5d", 43_200.0),
        (" 7d ", 604_800.0),
        ("never", None),
        ("Never", None),
        (90, 90.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration(text: str | int | float, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["3 days", "30", "d", "0d", "0.0h", "-1d", "1y", "1d2h", "", "1,5h", True, 0, -3.0])
def test_bad_durations_are_rejected_with_the_accepted_forms(text: object) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)  # type: ignore[arg-type]


def test_bad_duration_message_names_the_text_and_the_units() -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration("3 days")
    assert str(caught.value) == "bad duration '3 days' (use Ns, Nm, Nh, Nd, Nw or never)"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "never"), (2_592_000.0, "30d"), (604_800.0, "1w"), (5400.0, "90m"), (45.0, "45s"), (0.5, "0.5s"), (1e-5, "0.00001s")],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.floats(min_value=1e-6, max_value=1e10, allow_nan=False) | st.integers(1, 10**9).map(float))
def test_format_then_parse_gives_the_same_seconds(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-12)
