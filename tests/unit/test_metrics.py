"""The ranking and calibration metrics on hand-checkable data."""

from __future__ import annotations

import pytest

from leadscore.analytics import metrics


def test_auc_counts_the_ordered_pairs() -> None:
    # positives score 0.9 and 0.4; negatives 0.8, 0.3, 0.1: of 6 pairs, 5 are ordered right
    assert metrics.auc([0.9, 0.8, 0.4, 0.3, 0.1], [1, 0, 1, 0, 0]) == pytest.approx(5 / 6)


def test_deciles_lift_and_gains_add_up() -> None:
    score = list(range(20, 0, -1))  # 20 rows, best first
    outcome = [1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    found = metrics.deciles(score, outcome)
    assert [d.positives for d in found] == [2, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    assert found[0].lift == pytest.approx(1.0 / 0.2) and found[0].cumulative_gain == pytest.approx(0.5)
    assert found[-1].cumulative_gain == pytest.approx(1.0)
    assert metrics.lift_top(score, outcome, share=0.1) == pytest.approx(5.0)


def test_calibration_threshold_and_brier() -> None:
    probability, outcome = [0.05, 0.15, 0.95, 0.85], [0, 0, 1, 0]
    bins = metrics.calibration(probability, outcome)
    assert [(b.rows, b.observed_rate) for b in bins] == [(1, 0.0), (1, 0.0), (1, 0.0), (1, 1.0)]
    chosen = metrics.at_threshold(probability, outcome, 0.8)
    assert (chosen.selected, chosen.precision, chosen.recall, chosen.share_selected) == (2, 0.5, 1.0, 0.5)
    assert metrics.brier(probability, outcome) == pytest.approx((0.05**2 + 0.15**2 + 0.05**2 + 0.85**2) / 4)


def test_one_outcome_only_is_a_clear_error() -> None:
    with pytest.raises(metrics.NotEnoughOutcomes, match="3 converted and 0 not converted"):
        metrics.auc([0.1, 0.2, 0.3], [1, 1, 1])
