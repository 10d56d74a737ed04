"""Attribution models on hand-checkable paths (every credit worked out in the comments), and
properties: credits are never negative and sum to the attributed conversions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from shared_data import shared_data
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.analytics.attribution import (
    MODELS,
    InvalidAttribution,
    attribute,
    counted_touches,
    removal_effects,
)

D = 86_400.0


def paths_frame(*rows: tuple[int, float | None, float | None, float | None]) -> pl.DataFrame:
    """(path_id, converted_at, lead_at, opportunity_at) rows."""
    return pl.DataFrame(rows, schema={"path_id": pl.Int64(), "converted_at": pl.Float64(), "lead_at": pl.Float64(),
                                      "opportunity_at": pl.Float64()}, orient="row")


def touches_frame(*rows: tuple[int, float, str]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"path_id": pl.Int64(), "ts": pl.Float64(), "value": pl.String()}, orient="row")


# Path 1: A (day 0) > B (day 1) > C (day 2), converted on day 2; a touch D on day 3 comes after
#         the conversion and is ignored.
# Path 2: A (day 0) > C (day 1), converted on day 1.
# Path 3: B (day 0), not converted.
TOUCHES = touches_frame((1, 0, "A"), (1, D, "B"), (1, 2 * D, "C"), (1, 3 * D, "D"), (2, 0, "A"), (2, D, "C"), (3, 0, "B"))
PATHS = paths_frame((1, 2 * D, None, None), (2, D, None, None), (3, None, None, None))


def credits(result_models: tuple[str, ...] = MODELS, **kwargs: object) -> dict[str, dict[str, float]]:
    result = attribute(TOUCHES, PATHS, result_models, **kwargs)  # type: ignore[arg-type]
    return {m: dict(result.credits.select("value", m).iter_rows()) for m in result_models}


def approx(expected: dict[str, float]) -> object:
    return pytest.approx(expected, abs=1e-12)


def test_position_models_on_hand_paths() -> None:
    got = credits(half_life=D)
    assert got["first"] == approx({"A": 2, "B": 0, "C": 0})
    assert got["last"] == approx({"A": 0, "B": 0, "C": 2})
    # linear: path 1 gives 1/3 each, path 2 1/2 each
    assert got["linear"] == approx({"A": 1 / 3 + 1 / 2, "B": 1 / 3, "C": 1 / 3 + 1 / 2})
    # U: path 1 40/20/40, path 2 50/50
    assert got["u"] == approx({"A": 0.9, "B": 0.2, "C": 0.9})
    # W without milestones (lead and opportunity taken at the conversion: both on the last
    # touch): path 1 A 30 %, C 60 %, B the 10 %; path 2 (no other touch): A holds 1 role, C 2,
    # the 10 % shared per role: A 0.3 + 0.1/3, C 0.6 + 0.2/3
    assert got["w"] == approx({"A": 0.3 + 0.3 + 0.1 / 3, "B": 0.1, "C": 0.6 + 0.6 + 0.2 / 3})
    # time decay, half-life 1 day: path 1 weights 1/4, 1/2, 1 (sum 7/4); path 2 1/2, 1 (sum 3/2)
    assert got["time-decay"] == approx({"A": 1 / 7 + 1 / 3, "B": 2 / 7, "C": 4 / 7 + 2 / 3})
    for model in MODELS:
        assert "D" not in got[model] or got[model]["D"] == 0  # after the conversion: never counted


def test_markov_removal_effects_by_hand() -> None:
    # Transitions: start→A 2, start→B 1; A→B 1, A→C 1; B→C 1, B→null 1; C→conv 2.
    # Conversion probabilities: x_C = 1, x_B = 1/2, x_A = 1/2·x_B + 1/2·x_C = 3/4,
    # P = 2/3·x_A + 1/3·x_B = 2/3.
    # Without A (A → null): P = 1/3·1/2 = 1/6, RE_A = 1 - (1/6)/(2/3) = 3/4.
    # Without B: x_A = 1/2, P = 2/3·1/2 = 1/3, RE_B = 1/2.  Without C: P = 0, RE_C = 1.
    # Credits (2 conversions): A = 2·(3/4)/(9/4) = 2/3, B = 2·(1/2)/(9/4) = 4/9, C = 8/9.
    result = attribute(TOUCHES, PATHS, ("markov",))
    assert result.conversion_probability == pytest.approx(2 / 3)
    assert result.removal_effects == approx({"A": 3 / 4, "B": 1 / 2, "C": 1.0})
    assert dict(result.credits.select("value", "markov").iter_rows()) == approx({"A": 2 / 3, "B": 4 / 9, "C": 8 / 9})
    assert (result.conversions, result.unattributed, result.paths) == (2, 0, 3)


def test_w_shaped_key_touches_follow_the_lifecycle() -> None:
    # Five touches; the contact became a lead on day 1.5 (last touch at or before: T2 on day 1)
    # and an opportunity on day 3 (T4, on day 3 itself); converted day 4.
    touches = touches_frame((1, 0, "T1"), (1, D, "T2"), (1, 2 * D, "T3"), (1, 3 * D, "T4"), (1, 4 * D, "T5"))
    result = attribute(touches, paths_frame((1, 4 * D, 1.5 * D, 3 * D)), ("w",))
    got = dict(result.credits.select("value", "w").iter_rows())
    assert got == approx({"T1": 0.3, "T2": 0.3, "T3": 0.05, "T4": 0.3, "T5": 0.05})
    # a lead before every touch falls on the first touch: T1 holds two roles (60 %)
    early = attribute(touches, paths_frame((1, 4 * D, -D, 3 * D)), ("w",))
    assert dict(early.credits.select("value", "w").iter_rows()) == approx(
        {"T1": 0.6, "T2": 0.1 / 3, "T3": 0.1 / 3, "T4": 0.3, "T5": 0.1 / 3})


def test_u_shaped_spreads_twenty_percent_over_the_middle() -> None:
    touches = touches_frame(*[(1, i * D, f"T{i}") for i in range(5)])
    got = dict(attribute(touches, paths_frame((1, 10 * D, None, None)), ("u",)).credits.select("value", "u").iter_rows())
    assert got == approx({"T0": 0.4, "T1": 0.2 / 3, "T2": 0.2 / 3, "T3": 0.2 / 3, "T4": 0.4})


def test_lookback_window_and_unattributed_conversions() -> None:
    # lookback 1.5 days: path 1 keeps B and C, path 2 keeps A and C; a conversion whose only
    # touch is older than the window is unattributed.
    touches = TOUCHES.vstack(touches_frame((4, 0, "A")))
    paths = PATHS.vstack(paths_frame((4, 10 * D, None, None)))
    result = attribute(touches, paths, ("first", "linear"), lookback=1.5 * D)
    assert dict(result.credits.select("value", "first").iter_rows()) == approx({"A": 1, "B": 1, "C": 0})
    assert (result.conversions, result.unattributed) == (2, 1)
    counted = counted_touches(touches, paths, lookback=1.5 * D, end=0.5 * D)
    assert counted.filter(pl.col("path_id") == 3).height == 1  # day 0 is within 1.5 days before the end


def test_markov_matches_removing_each_state_explicitly() -> None:
    rng = np.random.default_rng(7)
    rows, conv = [], []
    for path in range(60):
        length = int(rng.integers(1, 6))
        rows += [(path, float(i), "ABCDE"[int(rng.integers(0, 5))]) for i in range(length)]
        conv.append((path, float(length) if rng.random() < 0.4 else None, None, None))
    counted = counted_touches(touches_frame(*rows), paths_frame(*conv))
    probability, effects = removal_effects(counted)
    assert all(0.0 <= effect <= 1.0 for effect in effects.values())
    assert 0 < probability < 1
    _assert_against_explicit_removal(counted, probability, effects)


def _assert_against_explicit_removal(counted: pl.DataFrame, probability: float, effects: dict[str, float]) -> None:
    """Rebuild the transition matrix and solve the absorbing chain once per removed value."""
    values = sorted(effects)
    idx = {v: i + 1 for i, v in enumerate(values)}
    k = len(values)
    counts = np.zeros((k + 1, k + 3))
    for _, group in counted.group_by("path_id", maintain_order=True):
        states = [0, *(idx[v] for v in group.get_column("value"))]
        end = k + 1 if group.get_column("converted")[0] else k + 2
        for a, b in zip(states, [*states[1:], end], strict=True):
            counts[a, b] += 1
    transitions = counts / counts.sum(axis=1, keepdims=True)

    def p_conversion(matrix: np.ndarray) -> float:
        q, r = matrix[:, : k + 1], matrix[:, k + 1]
        return float(np.linalg.solve(np.eye(k + 1) - q, r)[0])

    assert p_conversion(transitions) == pytest.approx(probability)
    for value in values:
        removed = transitions.copy()
        removed[idx[value], :] = 0.0
        removed[idx[value], k + 2] = 1.0  # the removed state leads to null
        assert effects[value] == pytest.approx(1 - p_conversion(removed) / probability)


def test_invalid_parameters() -> None:
    with pytest.raises(InvalidAttribution):
        attribute(TOUCHES, PATHS, ("nope",))  # type: ignore[arg-type]
    with pytest.raises(InvalidAttribution):
        attribute(TOUCHES, PATHS, ("time-decay",), half_life=0)


def test_no_conversions_gives_zero_credit() -> None:
    result = attribute(TOUCHES, paths_frame((1, None, None, None), (2, None, None, None), (3, None, None, None)))
    assert result.conversions == 0
    for model in MODELS:
        assert result.credits.get_column(model).sum() == 0


@st.composite
def journeys(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame]:
    n_paths = draw(st.integers(1, 12))
    touches, paths = [], []
    for path in range(n_paths):
        times = draw(st.lists(st.floats(0, 30 * D, allow_nan=False), min_size=0, max_size=7))
        touches += [(path, t, draw(st.sampled_from("abcd"))) for t in times]
        conv = draw(st.one_of(st.none(), st.floats(0, 30 * D, allow_nan=False)))
        lead = draw(st.one_of(st.none(), st.floats(0, 30 * D, allow_nan=False)))
        opportunity = draw(st.one_of(st.none(), st.floats(0, 30 * D, allow_nan=False)))
        paths.append((path, conv, lead, opportunity))
    return touches_frame(*touches), paths_frame(*paths)


@settings(max_examples=150, deadline=None)
@given(journeys(), st.one_of(st.none(), st.floats(D, 20 * D)))
def test_every_model_gives_non_negative_credits_summing_to_the_conversions(
    journey: tuple[pl.DataFrame, pl.DataFrame], lookback: float | None
) -> None:
    touches, paths = journey
    result = attribute(touches, paths, lookback=lookback, half_life=2 * D)
    total_converted = paths.filter(pl.col("converted_at").is_not_null()).height
    assert result.conversions + result.unattributed == total_converted
    # flow conservation: the fitted chain's conversion probability is the observed rate
    assert result.conversion_probability == pytest.approx(result.conversions / result.paths if result.paths else 0.0)
    for model in MODELS:
        column = result.credits.get_column(model)
        assert (column >= -1e-12).all()
        assert math.isclose(float(column.sum()), result.conversions, abs_tol=1e-9)


def test_real_data_olist_single_touch_models_coincide_and_campaigns_sum() -> None:
    data = shared_data()
    mqls = pl.read_csv(data / "olist_marketing_funnel" / "olist_marketing_qualified_leads_dataset.csv")
    deals = pl.read_csv(data / "olist_marketing_funnel" / "olist_closed_deals_dataset.csv", columns=["mql_id"])
    frame = mqls.with_row_index("path_id").with_columns(pl.col("path_id").cast(pl.Int64), pl.col("origin").fill_null("(blank)"))
    won = frame.get_column("mql_id").is_in(deals.get_column("mql_id").implode())
    paths = frame.select("path_id", converted_at=pl.when(won).then(1.0))
    result = attribute(frame.select("path_id", ts=pl.lit(0.0), value="origin"), paths)
    expected = dict(frame.filter(won).group_by("origin").len().iter_rows())
    assert result.conversions == 842
    for model in MODELS:  # one touch per MQL: every model gives the deals of its origin
        got = {v: c for v, c in result.credits.select("value", model).iter_rows() if c}
        assert got == pytest.approx(expected)
    served = pl.read_csv(data / "marketing_campaigns_fictional" / "marketing.csv", try_parse_dates=True).drop_nulls(
        ["date_served", "marketing_channel"])
    ids = served.select("user_id").unique(maintain_order=True).with_row_index("path_id")
    served = served.join(ids, on="user_id").with_columns(ts=pl.col("date_served").cast(pl.Datetime("us")).dt.epoch("s") / 1.0)
    conv = served.group_by("path_id").agg(converted_at=pl.col("ts").filter(pl.col("converted").fill_null(False)).min())
    result = attribute(served.select(pl.col("path_id").cast(pl.Int64), "ts", value="marketing_channel"),
                       conv.with_columns(pl.col("path_id").cast(pl.Int64)))
    assert result.conversions == 1015
    for model in MODELS:
        assert math.isclose(float(result.credits.get_column(model).sum()), 1015, rel_tol=1e-9)
