"""Evaluation: `leadscore train` on the X Education leads, beside plain scikit-learn baselines.

Usage (about two minutes on 2 cores; writes docs/evaluation-results.json, quoted by
docs/evaluation.md):

    .venv/bin/python benchmarks/eval_x_education.py [--data ../shared/data/x_education_leads/Leads.csv]

The table is read as `leadscore train` reads it ("Select" = not filled in, identifiers and
constant columns left out). Three column sets:

- without: the sales-filled columns (Tags, Lead Quality, Lead Profile, the four Asymmetrique
  columns, Last Activity, Last Notable Activity) left out — the honest prediction at intake;
- published: only Last Activity and Last Notable Activity kept of those, as most published
  logistic regressions on this data do (for comparison with their 0.86-0.90);
- with: every column (leaks the outcome).

Four models on each, all on the SAME rows: leadscore's logistic regression and gradient boosting
(`leadscore.analytics.train`), a scikit-learn LogisticRegression on one-hot levels with default
preprocessing (median imputation, scaling), and a HistGradientBoostingClassifier with native
categories. Held-out figures on one stratified random 80/20 split (seed 42), and the mean and
standard deviation of the test AUC over 5 stratified folds (shuffled, seed 42) of all rows. No
parameter is tuned on the held-out rows.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import machine_facts  # benchmarks/machine_facts.py, beside this script

import numpy as np
import polars as pl
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from leadscore.analytics import metrics
from leadscore.analytics import train as training
from leadscore.analytics.table import outcomes, read_table

ROOT = Path(__file__).parents[1]
DATA = ROOT.parent / "shared" / "data" / "x_education_leads" / "Leads.csv"
RESULTS = ROOT / "docs" / "evaluation-results.json"
SALES_FILLED = ["Tags", "Lead Quality", "Lead Profile", "Asymmetrique Activity Index", "Asymmetrique Profile Index",
                "Asymmetrique Activity Score", "Asymmetrique Profile Score", "Last Activity", "Last Notable Activity"]
COLUMN_SETS = {
    "without": SALES_FILLED,
    "published": [name for name in SALES_FILLED if not name.startswith("Last ")],
    "with": [],
}
FOLDS = 5
SEED = training.DEFAULT_SEED


class PolarsCategories:
    """Feeds gradient boosting its categorical columns as polars Categorical (native categories)."""

    def __init__(self, categorical: list[str]) -> None:
        self.categorical = categorical

    def __call__(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col(name).cast(pl.Categorical) for name in self.categorical)


def sklearn_logistic(features: training.Features) -> Pipeline:
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    levels = make_pipeline(SimpleImputer(missing_values=None, strategy="constant", fill_value="missing"),
                           OneHotEncoder(handle_unknown="ignore"))
    parts = ColumnTransformer([("levels", levels, features.categorical), ("numbers", numbers, features.numeric)])
    return Pipeline([("features", parts), ("model", LogisticRegression(max_iter=5_000))])


class NativeBoosting:
    """HistGradientBoostingClassifier(categorical_features="from_dtype") on polars categories."""

    def __init__(self, features: training.Features) -> None:
        self.prepare = PolarsCategories(features.categorical)
        self.columns = features.columns
        self.model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=SEED)

    def fit(self, frame: pl.DataFrame, outcome: np.ndarray) -> NativeBoosting:
        self.model.fit(self.prepare(frame.select(self.columns)), outcome)
        return self

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        return self.model.predict_proba(self.prepare(frame.select(self.columns)))


MODELS: dict[str, Any] = {
    "leadscore logistic": lambda features: training.logistic_pipeline(features, seed=SEED),
    "leadscore boosting": lambda features: training.boosting_pipeline(features, seed=SEED),
    "scikit-learn LogisticRegression (one-hot, defaults)": sklearn_logistic,
    "scikit-learn HistGradientBoosting (native categories)": NativeBoosting,
}


def probabilities(model: Any, frame: pl.DataFrame) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Found unknown categories", category=UserWarning)
        return np.asarray(model.predict_proba(frame)[:, 1], dtype=np.float64)


def measure(make: Any, features: training.Features, frame: pl.DataFrame, outcome: np.ndarray,
            split: training.Split) -> dict[str, Any]:
    started = time.perf_counter()
    model = make(features).fit(frame[split.train], outcome[split.train])
    fit_seconds = time.perf_counter() - started
    held_out = training.evaluate(probabilities(model, frame[split.test]), outcome[split.test])
    aucs = []
    for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(np.zeros(outcome.size), outcome):
        fold_model = make(features).fit(frame[train], outcome[train])
        aucs.append(metrics.auc(probabilities(fold_model, frame[test]), outcome[test]))
    return {"test_auc": held_out["auc"], "lift_top_decile": held_out["lift_top_decile"], "brier": held_out["brier"],
            "cv_auc_mean": round(float(np.mean(aucs)), 4), "cv_auc_sd": round(float(np.std(aucs, ddof=1)), 4),
            "cv_aucs": [round(value, 4) for value in aucs], "fit_seconds": round(fit_seconds, 2)}


def machine() -> dict[str, Any]:
    return machine_facts.machine(scikit_learn=sklearn.__version__, polars=pl.__version__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    frame = read_table(args.data, missing=["Select"])
    found = outcomes(frame, "Converted")
    frame, outcome = frame.filter(found.kept), found.values
    split = training.split_rows(outcome, seed=SEED)
    document: dict[str, Any] = {
        "command": "python benchmarks/eval_x_education.py", "machine": machine(),
        "data": {"file": args.data.name, "rows": int(outcome.size), "converted": int(outcome.sum()),
                 "missing_marker": "Select"},
        "split": f"{split.description} ({split.train.size} train / {split.test.size} test); "
                 f"cross-validation: {FOLDS} stratified folds of all rows, shuffled with seed {SEED}",
        "column_sets": {},
    }
    for name, excluded in COLUMN_SETS.items():
        features = training.plan_features(frame, target="Converted", exclude=excluded)
        signals = training.column_signals(frame[split.train], outcome[split.train], features)
        models = {}
        for label, make in MODELS.items():
            models[label] = measure(make, features, frame, outcome, split)
            print(f"{name:>9}  {label:<55} test AUC {models[label]['test_auc']:.4f}  "
                  f"CV {models[label]['cv_auc_mean']:.4f} ± {models[label]['cv_auc_sd']:.4f}", flush=True)
        document["column_sets"][name] = {
            "excluded": excluded, "numeric": features.numeric, "categorical": features.categorical,
            "dropped": {column: why for column, why in features.dropped.items() if why != "excluded"},
            "flags": [signal for signal in signals if signal["reason"]],
            "univariate_auc": {signal["column"]: signal["univariate_auc"] for signal in signals[:8]},
            "models": models,
        }
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
