"""The backtest's pure parts: outcome labels around the cutoff, the MQL threshold a model
implies, the assembled metrics, and the HTML report."""

from __future__ import annotations

import polars as pl
import pytest

from leadscore.analytics import backtest, metrics, report_html
from leadscore.core.model import parse_model
from leadscore.core.types import ScoringModel

CUTOFF = 1_000_000.0
DAY = 86_400.0

BASE = """\
version: 1
name: test
fit: {max: 10, rules: [{id: titled, where: {field: traits.title, exists: true}, points: 10}]}
engagement: {max: 10, half_life: 30d, rules: [{id: demo, on: Demo Requested, points: 10}]}
temperature: {hot: 70, warm: 45}
"""


def make_model(lifecycle: str = "") -> ScoringModel:
    return parse_model(BASE + lifecycle, source="test")


def make_scores(*, scores: list[float], grades: list[str] | None = None, temperatures: list[str] | None = None) -> pl.DataFrame:
    n = len(scores)
    return pl.DataFrame({
        "contact_id": list(range(1, n + 1)),
        "score": scores,
        "grade": grades or ["A"] * n,
        "temperature": temperatures or ["cold"] * n,
    }, schema={"contact_id": pl.Int64, "score": pl.Float64, "grade": pl.String, "temperature": pl.String})


def make_conversions(rows: dict[int, float]) -> pl.DataFrame:
    return pl.DataFrame({"contact_id": list(rows), "converted_at": list(rows.values())},
                        schema={"contact_id": pl.Int64, "converted_at": pl.Float64})


def test_only_conversions_inside_the_window_count_and_earlier_ones_leave_the_population() -> None:
    scores = make_scores(scores=[10, 20, 30, 40, 50])
    conversions = make_conversions({1: CUTOFF - 1, 2: CUTOFF, 3: CUTOFF + 1, 4: CUTOFF + 30 * DAY, 5: CUTOFF + 30 * DAY + 1})
    labelled, already = backtest.label_outcomes(scores, conversions, cutoff=CUTOFF, window=30 * DAY)
    assert already == 2  # at or before the cutoff: not a future conversion
    assert dict(labelled.select("contact_id", "converted").iter_rows()) == {3: True, 4: True, 5: False}


def test_mql_threshold_from_score_rules_else_warm_else_explicit() -> None:
    by_score = make_model("lifecycle:\n  rules:\n    - {id: hot-lead, to: mql, when: {score: {gte: 55}}}\n"
                          "    - {id: warm-lead, to: mql, when: {any: [{score: {gte: 80}}, {temperature: {at_least: warm}}]}}\n")
    found = backtest.mql_threshold(by_score)
    assert found.value == 45 and "hot-lead, warm-lead" in found.source
    by_grade = make_model("lifecycle:\n  rules:\n    - {id: fit, to: mql, when: {grade: {at_least: B}}}\n")
    fallback = backtest.mql_threshold(by_grade)
    assert fallback.value == 45 and fallback.source.startswith("temperature warm")
    assert backtest.mql_threshold(by_grade, explicit=62).value == 62


def test_metrics_assembled_from_a_labelled_frame() -> None:
    # 10 contacts, the two best scores convert, plus one in the middle
    scores = [float(s) for s in (95, 90, 80, 70, 60, 50, 40, 30, 20, 10)]
    labelled = make_scores(scores=scores, grades=list("AABBCCDDDD"), temperatures=["hot"] * 2 + ["warm"] * 3 + ["cold"] * 5)
    labelled = labelled.with_columns(pl.Series("converted", [True, True, False, False, True, False, False, False, False, False]))
    result = backtest.backtest(labelled, backtest.Threshold(60.0, "test"), already_converted=4)
    assert (result.contacts, result.converted, result.already_converted) == (10, 3, 4)
    assert result.auc == pytest.approx(metrics.auc(scores, [1, 1, 0, 0, 1, 0, 0, 0, 0, 0]))
    assert result.at_threshold.selected == 5 and result.at_threshold.precision == pytest.approx(3 / 5)
    assert result.at_threshold.recall == 1.0
    assert [(g.label, g.contacts, g.converted) for g in result.by_grade] == [("A", 2, 2), ("B", 2, 0), ("C", 2, 1), ("D", 4, 0)]
    assert [(g.label, g.rate) for g in result.by_temperature] == [("hot", 1.0), ("warm", pytest.approx(1 / 3)), ("cold", 0.0)]
    assert result.deciles[0].cumulative_gain == pytest.approx(1 / 3)
    assert sum(b.rows for b in result.calibration) == 10
    document = backtest.as_json(result)
    assert document["mql_threshold"] == {"source": "test", "threshold": 60.0, "selected": 5, "precision": 0.6,
                                         "recall": 1.0, "share_selected": 0.5}


def test_no_conversion_is_not_enough_to_measure() -> None:
    labelled = make_scores(scores=[1.0, 2.0]).with_columns(pl.lit(False).alias("converted"))
    with pytest.raises(metrics.NotEnoughOutcomes):
        backtest.backtest(labelled, backtest.Threshold(40.0, "test"))


def test_html_report_draws_every_chart_for_both_models() -> None:
    labelled = make_scores(scores=[90.0, 50.0, 40.0, 10.0]).with_columns(pl.Series("converted", [True, False, True, False]))
    model = {"model": "published revision 1", "name": "test",
             **backtest.as_json(backtest.backtest(labelled, backtest.Threshold(45.0, "test")))}
    document = {"cutoff": "2026-01-01T00:00:00Z", "window_days": 30.0, "window_end": "2026-01-31T00:00:00Z",
                "outcome": {"stage": "sql", "event": None}, "warnings": ["a <warning>"],
                "models": [model, {**model, "model": "revision 2 (draft)"}]}
    page = report_html.render(document)
    assert page.startswith("<!DOCTYPE html>") and "http://" not in page.split("<svg")[0]
    for chart in report_html.CHARTS:
        assert f"id='chart-{chart}'><svg" in page
    assert page.count("revision 2 (draft)") >= 4 and "a &lt;warning&gt;" in page
