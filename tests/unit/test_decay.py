from __future__ import annotations

import math

import pytest
from factories import DAY, T0

from leadscore.core.decay import Accumulator, decay_factor


def test_one_half_life_halves_and_two_quarter() -> None:
    assert decay_factor(30 * DAY, 30 * DAY) == 0.5
    assert decay_factor(60 * DAY, 30 * DAY) == 0.25
    assert decay_factor(0.0, 30 * DAY) == 1.0


def test_half_life_is_not_the_mean_lifetime_form() -> None:
    assert decay_factor(10 * DAY, 10 * DAY) != pytest.approx(math.exp(-1))


def test_never_decays() -> None:
    assert decay_factor(10_000 * DAY, None) == 1.0


def test_empty_accumulator_reads_zero_and_adds_first_point_as_is() -> None:
    empty = Accumulator.empty()
    assert empty.is_empty
    assert empty.value_at(T0, 7 * DAY) == 0.0
    first = empty.add(4.0, T0, 7 * DAY)
    assert first == Accumulator(4.0, T0)


def test_add_after_reference_decays_the_held_sum() -> None:
    accumulator = Accumulator(8.0, T0).add(1.0, T0 + 10 * DAY, 10 * DAY)
    assert accumulator == Accumulator(5.0, T0 + 10 * DAY)


def test_late_event_joins_already_decayed() -> None:
    accumulator = Accumulator(8.0, T0 + 10 * DAY).add(2.0, T0, 10 * DAY)
    assert accumulator == Accumulator(9.0, T0 + 10 * DAY)


def test_reading_later_decays_and_never_rule_sums() -> None:
    accumulator = Accumulator(8.0, T0)
    assert accumulator.value_at(T0 + 20 * DAY, 10 * DAY) == 2.0
    never = Accumulator.empty().add(-25.0, T0, None).add(-25.0, T0 - DAY, None)
    assert never.value_at(T0 + 1000 * DAY, None) == -50.0


def test_reading_before_reference_is_back_extrapolation() -> None:
    assert Accumulator(2.0, T0).value_at(T0 - 10 * DAY, 10 * DAY) == 4.0


def test_merge_is_commutative_and_equals_adding_everything() -> None:
    half_life = 5 * DAY
    a = Accumulator.empty().add(3.0, T0, half_life).add(1.0, T0 + 2 * DAY, half_life)
    b = Accumulator.empty().add(7.0, T0 + DAY, half_life)
    everything = a.add(7.0, T0 + DAY, half_life)
    assert a.merge(b, half_life).t_ref == b.merge(a, half_life).t_ref == T0 + 2 * DAY
    assert a.merge(b, half_life).s == pytest.approx(b.merge(a, half_life).s, rel=1e-15)
    assert a.merge(b, half_life).s == pytest.approx(everything.s, rel=1e-12)
    assert a.merge(Accumulator.empty(), half_life) == a
    assert Accumulator.empty().merge(b, half_life) == b
