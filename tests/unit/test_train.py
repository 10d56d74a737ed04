"""Training on any table: reading (delimiter, missing markers, targets), feature planning, the
split, planted signals found, leaking columns flagged, pipelines saved and loaded with skops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from leadscore.analytics import train as training
from leadscore.analytics.table import TableError, outcomes, read_table, sniff_delimiter, time_order
from leadscore.cli.app import app


def leads_table(*, rows: int = 600, seed: int = 7, leak: bool = False) -> pl.DataFrame:
    """Synthetic leads: conversion driven by minutes on site and the source; noise columns."""
    rng = np.random.default_rng(seed)
    minutes = rng.gamma(2.0, 5.0, rows)
    source = rng.choice(["ads", "referral", "organic", "event"], rows)
    signal = 0.5 * (minutes - 10) + np.where(source == "referral", 3.0, 0.0) + rng.normal(0, 1.0, rows)
    converted = (signal > np.quantile(signal, 0.6)).astype(int)
    columns: dict[str, object] = {
        "lead_id": [f"L-{index:05d}" for index in range(rows)],
        "minutes_on_site": minutes,
        "source": source.tolist(),
        "city": rng.choice(["Paris", "Lyon", None], rows).tolist(),
        "converted": np.where(converted == 1, "Yes", "No").tolist(),
    }
    if leak:
        columns["stage_after_call"] = np.where(converted == 1, "closed", rng.choice(["ringing", "no answer"], rows)).tolist()
        columns["lost_reason"] = np.where(converted == 1, None, rng.choice(["price", "timing", None], rows)).tolist()
    return pl.DataFrame(columns)


def train(frame: pl.DataFrame, **options: object) -> training.Trained:
    found = outcomes(frame, "converted")
    return training.train_table(frame.filter(found.kept), found.values, target="converted", **options)  # type: ignore[arg-type]


def test_a_planted_signal_is_found_by_both_models() -> None:
    trained = train(leads_table(rows=1000), folds=3)
    result = trained.result
    assert result["n_train"] == 800 and result["n_test"] == 200
    assert result["split"] == "stratified random 80/20, seed 42"
    for name in ("logistic", "boosting"):
        assert result["models"][name]["auc"] > 0.9, result["models"][name]
        assert result["models"][name]["cv"]["folds"] == 3
    assert result["auc"] == result["models"]["logistic"]["auc"]
    assert result["lift_top_decile"] > 2.0 and 0 < result["brier"] < 0.15
    assert result["dropped"]["lead_id"].startswith("identifier")
    assert result["features"] == {"numeric": ["minutes_on_site"], "categorical": ["source", "city"]}
    assert result["flags"] == []
    assert len(result["models"]["logistic"]["deciles"]) == 10


def test_leaking_columns_are_flagged_and_can_be_excluded() -> None:
    flagged = {flag["column"]: flag for flag in train(leads_table(leak=True), models=["logistic"]).result["flags"]}
    assert set(flagged) == {"stage_after_call", "lost_reason"}
    assert "AUC" in flagged["stage_after_call"]["reason"]
    assert "every converted row has '(missing)'" in flagged["lost_reason"]["reason"]
    result = train(leads_table(leak=True), models=["logistic"], exclude=["stage_after_call", "lost_reason"]).result
    assert result["flags"] == [] and result["excluded"] == ["stage_after_call", "lost_reason"]
    with pytest.raises(TableError, match="no such column"):
        train(leads_table(), exclude=["nope"])


def test_a_time_split_holds_out_the_latest_rows() -> None:
    frame = leads_table(rows=300).with_columns(
        created=pl.Series([f"2026-{1 + index % 12:02d}-{1 + index % 28:02d}T{index % 24:02d}:00:00Z" for index in range(300)]))
    order = time_order(frame.get_column("created"))
    trained = train(frame, time="created", order=order, models=["boosting"])
    assert trained.result["split"].startswith("time-ordered 80/20: the latest 20 % of rows by 'created'")
    assert trained.result["dropped"]["created"].startswith("time column")
    assert order[trained.split.test].min() >= order[trained.split.train].max()
    assert trained.split.test.size == 60
    with pytest.raises(TableError, match="--folds"):
        train(frame, time="created", order=order, folds=5)


def test_targets_in_words_or_numbers() -> None:
    frame = pl.DataFrame({"a": ["Yes", "no", None, "TRUE", "false", "1", "0", "Won", "lost"]})
    found = outcomes(frame, "a")
    assert found.values.tolist() == [1, 0, 1, 0, 1, 0, 1, 0]
    assert found.kept.tolist() == [True, True, False, True, True, True, True, True, True]
    with pytest.raises(TableError, match="two outcomes"):
        outcomes(pl.DataFrame({"a": ["maybe", "yes"]}), "a")
    with pytest.raises(TableError, match="did you mean 'Converted'"):
        outcomes(pl.DataFrame({"Converted": ["yes"]}), "converted")


def test_a_semicolon_table_with_missing_markers(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("id;visits;source;Converted\n1;3;Select;yes\n2; 4 ;web;no\n3;;web;no\n", encoding="utf-8")
    assert sniff_delimiter(path.read_text()) == ";"
    frame = read_table(path, missing=["Select"])
    assert frame.columns == ["id", "visits", "source", "Converted"]
    assert frame.schema["visits"] == pl.Float64
    assert frame.get_column("visits").to_list() == [3.0, 4.0, None]
    assert frame.get_column("source").to_list() == [None, "web", "web"]
    assert read_table(path).get_column("source").to_list() == ["Select", "web", "web"]


def test_too_little_history_is_refused() -> None:
    frame = leads_table(rows=40).with_columns(converted=pl.Series(["Yes"] * 5 + ["No"] * 35))
    with pytest.raises(TableError, match="5 converted and 35 not converted"):
        train(frame)


def test_saved_pipelines_load_with_skops_and_predict_the_same(tmp_path: Path) -> None:
    frame = leads_table(rows=400)
    trained = train(frame)
    written = training.save(trained, tmp_path / "model")
    assert sorted(path.name for path in written) == ["boosting.skops", "card.json", "logistic.skops"]
    card = json.loads((tmp_path / "model" / "card.json").read_text())
    assert card["auc"] == trained.result["auc"] and card["files"]["logistic"] == "logistic.skops"
    for name, pipeline in trained.pipelines.items():
        loaded = training.load_pipeline(tmp_path / "model" / f"{name}.skops")
        assert np.allclose(training.predict(loaded, frame), training.predict(pipeline, frame))


def test_cli_json_contract_and_a_bad_target(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    leads_table(rows=300).write_csv(path, separator=";")
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--data", str(path), "--target", "converted", "--model", "logistic",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output.strip().splitlines()[-1])
    assert {"auc", "n_train", "n_test", "split", "lift_top_decile", "brier", "models", "flags", "excluded"} <= set(document)
    assert list(document["models"]) == ["logistic"]
    bad = runner.invoke(app, ["train", "--data", str(path), "--target", "Revenue"])
    assert bad.exit_code == 2
    assert "no column 'Revenue'" in bad.output
    missing_file = runner.invoke(app, ["train", "--data", str(tmp_path / "none.csv"), "--target", "converted"])
    assert missing_file.exit_code == 2 and "no such file" in missing_file.output
