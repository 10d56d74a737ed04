"""Training a conversion model on any table: which columns are features, two scikit-learn
pipelines (a regularised logistic regression and gradient boosting), a held-out evaluation with
AUC, lift, Brier score and calibration, optional k-fold cross-validation, and flags on columns
that predict the outcome suspiciously well (filled in after the fact).

Pure: a polars frame and 0/1 outcomes in, fitted pipelines and a JSON-ready result out. The
figures come from ``analytics.metrics``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import sklearn
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, SplineTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from leadscore.analytics import metrics
from leadscore.analytics.table import TableError

DEFAULT_SEED = 42
TEST_SHARE = 0.2
RARE_LEVEL = 10  # levels seen on fewer training rows are grouped into one "infrequent" level
MAX_LEVELS = 250  # per categorical column, for gradient boosting's native categories
LEAK_AUC = 0.95  # a single column ranking this well on its own is suspicious
MIN_PER_CLASS = 10
MISSING_LEVEL = "(missing)"
MODELS = ("logistic", "boosting")
THREADED_FROM = 50_000  # rows: below, one thread learns faster than several (see threads_for)
# What the saved pipelines hold beyond what skops trusts by default; loading refuses anything else.
TRUSTED_TYPES = frozenset({
    "numpy.dtype", "functools.partial", "scipy.interpolate._bsplines.BSpline",
    "scipy._lib.array_api_compat.numpy._aliases.asarray", "sklearn.utils.validation.check_array",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
})


@dataclass(frozen=True, slots=True)
class Features:
    numeric: list[str]
    categorical: list[str]
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why it is not a feature

    @property
    def columns(self) -> list[str]:
        return self.categorical + self.numeric


@dataclass(frozen=True, slots=True)
class Split:
    train: np.ndarray  # row positions
    test: np.ndarray
    description: str


@dataclass(slots=True)
class Trained:
    result: dict[str, Any]  # JSON-ready: the `leadscore train --format json` document
    pipelines: dict[str, Pipeline]
    features: Features
    split: Split


def plan_features(frame: pl.DataFrame, *, target: str, exclude: Sequence[str] = (), time: str | None = None) -> Features:
    """Float columns are numeric, the others categorical; the target, the time column, excluded
    columns, constant columns and identifiers (a distinct value on every row) are left out."""
    unknown = [name for name in exclude if name not in frame.columns]
    if unknown:
        raise TableError(f"cannot exclude {', '.join(map(repr, unknown))}: no such column")
    dropped: dict[str, str] = {target: "target"}
    if time:
        dropped[time] = "time column (used for the split)"
    dropped.update({name: "excluded" for name in exclude if name not in dropped})
    numeric, categorical = [], []
    rows = frame.height
    for name in frame.columns:
        if name in dropped:
            continue
        column = frame.get_column(name)
        distinct = column.drop_nulls().n_unique()
        is_number = column.dtype == pl.Float64
        if distinct <= 1:
            dropped[name] = "constant"
        elif distinct == rows and (not is_number or bool((column == column.round(0)).all())):
            dropped[name] = "identifier (a distinct value on every row)"
        elif is_number:
            numeric.append(name)
        else:
            categorical.append(name)
    if not numeric and not categorical:
        raise TableError("no feature column is left to train on")
    return Features(numeric, categorical, dropped)


@contextmanager
def threads_for(rows: int) -> Iterator[None]:
    """One native thread for small tables: gradient boosting's OpenMP threads cost more than
    they give on a few thousand rows, and on a busy machine spin-waiting threads made a fit
    26 times slower (2 s instead of 0.08 s on 400 rows, 2 loaded cores). Large tables keep
    every core."""
    if rows >= THREADED_FROM:
        yield
        return
    with threadpool_limits(limits=1):
        yield


def _categorical_imputer() -> SimpleImputer:
    return SimpleImputer(missing_values=None, strategy="constant", fill_value=MISSING_LEVEL)


def logistic_pipeline(features: Features, *, seed: int = DEFAULT_SEED) -> Pipeline:
    """One-hot levels (rare ones grouped, missing as a level), numbers on a signed log scale
    (arcsinh) expanded into splines with a missing indicator each, scaled, and an L2-regularised
    logistic regression (C = 1)."""
    numbers = make_pipeline(SimpleImputer(strategy="median"), FunctionTransformer(np.arcsinh),
                            SplineTransformer(n_knots=5, degree=3), StandardScaler())
    levels = make_pipeline(_categorical_imputer(),
                           OneHotEncoder(min_frequency=RARE_LEVEL, handle_unknown="infrequent_if_exist"))
    parts: list[tuple[str, Any, list[str]]] = [("levels", levels, features.categorical)] if features.categorical else []
    if features.numeric:
        parts += [("numbers", numbers, features.numeric),
                  ("missing", MissingIndicator(features="missing-only", error_on_new=False), features.numeric)]
    model = LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=1_000, random_state=seed)
    return Pipeline([("features", ColumnTransformer(parts)), ("model", model)])


def boosting_pipeline(features: Features, *, seed: int = DEFAULT_SEED) -> Pipeline:
    """Gradient boosting with native categories (rare levels grouped, unseen ones as missing)
    and native missing numbers; it stops adding trees when a tenth of the training rows, kept
    aside, stops improving."""
    levels = make_pipeline(_categorical_imputer(), OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=-1, min_frequency=RARE_LEVEL, max_categories=MAX_LEVELS))
    parts: list[tuple[str, Any, list[str]]] = [("levels", levels, features.categorical)] if features.categorical else []
    if features.numeric:
        parts.append(("numbers", "passthrough", features.numeric))
    mask = [True] * len(features.categorical) + [False] * len(features.numeric)
    model = HistGradientBoostingClassifier(categorical_features=mask, learning_rate=0.1, max_iter=300,
                                           early_stopping=True, validation_fraction=0.1, n_iter_no_change=10,
                                           l2_regularization=1.0, random_state=seed)
    return Pipeline([("features", ColumnTransformer(parts)), ("model", model)])


PIPELINES: dict[str, Callable[..., Pipeline]] = {"logistic": logistic_pipeline, "boosting": boosting_pipeline}


def split_rows(outcome: np.ndarray, *, order: np.ndarray | None = None, time_name: str | None = None,
               seed: int = DEFAULT_SEED, test_share: float = TEST_SHARE) -> Split:
    """With ``order`` (a time per row), the latest ``test_share`` of rows held out; else a
    stratified random split with ``seed``."""
    rows = np.arange(outcome.size)
    share = f"{round((1 - test_share) * 100)}/{round(test_share * 100)}"
    if order is not None:
        ranked = rows[np.lexsort((rows, order))]
        cut = outcome.size - max(1, int(round(test_share * outcome.size)))
        return Split(np.sort(ranked[:cut]), np.sort(ranked[cut:]),
                     f"time-ordered {share}: the latest {round(test_share * 100)} % of rows by {time_name!r} held out")
    train, test = train_test_split(rows, test_size=test_share, stratify=outcome, random_state=seed)
    return Split(np.sort(train), np.sort(test), f"stratified random {share}, seed {seed}")


def predict(pipeline: Pipeline, frame: pl.DataFrame) -> np.ndarray:
    """Probability of converting per row (levels never seen in training count as infrequent)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Found unknown categories", category=UserWarning)
        return np.asarray(pipeline.predict_proba(frame)[:, 1], dtype=np.float64)


def evaluate(probability: np.ndarray, outcome: np.ndarray) -> dict[str, Any]:
    """AUC, lift of the top decile, Brier score, calibration and deciles of held-out predictions."""
    return {
        "auc": round(metrics.auc(probability, outcome), 4),
        "lift_top_decile": round(metrics.lift_top(probability, outcome, share=0.1), 3),
        "brier": round(metrics.brier(probability, outcome), 4),
        "calibration": metrics.as_dict(metrics.calibration(probability, outcome)),
        "deciles": metrics.as_dict(metrics.deciles(probability, outcome)),
    }


def cross_validate(name: str, features: Features, frame: pl.DataFrame, outcome: np.ndarray, *,
                   folds: int, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Test AUC of ``folds``-fold stratified cross-validation (shuffled with ``seed``): each fold
    held out once while a fresh pipeline learns from the others."""
    aucs = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(outcome.size), outcome):
        pipeline = PIPELINES[name](features, seed=seed).fit(frame[train], outcome[train])
        aucs.append(metrics.auc(predict(pipeline, frame[test]), outcome[test]))
    return {"folds": folds, "auc_mean": round(float(np.mean(aucs)), 4), "auc_sd": round(float(np.std(aucs, ddof=1)), 4),
            "aucs": [round(value, 4) for value in aucs]}


def _level_scores(column: pl.Series, outcome: np.ndarray) -> np.ndarray:
    """Each row's level replaced by the level's conversion rate (rare levels pooled)."""
    text = column.cast(pl.Utf8).fill_null(MISSING_LEVEL)
    counts = text.value_counts()
    rare = set(counts.filter(pl.col("count") < RARE_LEVEL).get_column(text.name).to_list())
    keys = np.array([("(rare)" if value in rare else value) for value in text.to_list()], dtype=object)
    _, inverse = np.unique(keys, return_inverse=True)
    rates = np.bincount(inverse, weights=outcome) / np.bincount(inverse)
    return rates[inverse]


def column_signals(frame: pl.DataFrame, outcome: np.ndarray, features: Features) -> list[dict[str, Any]]:
    """Each feature column's own AUC on the training rows (a number as it is, a level by its
    conversion rate; the better of the two directions), best first, with ``reason`` set when the
    column is suspiciously predictive: AUC >= 0.95 on its own, or one value across a whole
    outcome class while varying in the other — typically filled in after the outcome was known."""
    signals = []
    for name in features.columns:
        column = frame.get_column(name)
        if name in features.numeric:
            values = column.to_numpy()
            filled = ~np.isnan(values)
            score = np.where(filled, values, np.median(values[filled]) if filled.any() else 0.0)
        else:
            score = _level_scores(column, outcome)
        area = metrics.auc(score, outcome)
        single = max(area, 1.0 - area)
        reasons = []
        if single >= LEAK_AUC:
            reasons.append(f"on its own it ranks the outcome with AUC {single:.3f}")
        keys = column.cast(pl.Utf8).fill_null(MISSING_LEVEL).to_numpy()
        for label, other in ((1, 0), (0, 1)):
            mine = keys[outcome == label]
            if np.unique(mine).size == 1:
                differing = int((keys[outcome == other] != mine[0]).sum())
                if differing >= 5 and differing >= 0.05 * int((outcome == other).sum()):
                    word = "converted" if label else "not converted"
                    reasons.append(f"every {word} row has {mine[0]!r}")
        signals.append({"column": name, "univariate_auc": round(single, 4), "reason": "; ".join(reasons) or None})
    return sorted(signals, key=lambda signal: (-signal["univariate_auc"], signal["column"]))


def train_table(frame: pl.DataFrame, outcome: np.ndarray, *, target: str, time: str | None = None,
                order: np.ndarray | None = None, exclude: Sequence[str] = (), models: Sequence[str] = MODELS,
                folds: int = 0, seed: int = DEFAULT_SEED) -> Trained:
    """Train ``models`` on the training part of ``frame`` (rows aligned with ``outcome``) and
    evaluate them on the held-out part; the top-level figures are those of the first model."""
    positives = int(outcome.sum())
    if min(positives, outcome.size - positives) < MIN_PER_CLASS:
        raise TableError(f"too little history to train: {positives} converted and {outcome.size - positives} "
                         f"not converted rows; at least {MIN_PER_CLASS} of each are needed")
    if folds and order is not None:
        raise TableError("--folds cross-validates random splits: leave it out with --time")
    if folds == 1 or folds < 0:
        raise TableError("--folds must be 0 (no cross-validation) or at least 2")
    features = plan_features(frame, target=target, exclude=exclude, time=time)
    split = split_rows(outcome, order=order, time_name=time, seed=seed)
    train_frame, test_frame = frame[split.train], frame[split.test]
    y_train, y_test = outcome[split.train], outcome[split.test]
    for part, values in (("training", y_train), ("held-out", y_test)):
        if values.min() == values.max():
            raise TableError(f"the {part} rows hold only one outcome: the split cannot measure a ranking")
    signals = column_signals(train_frame, y_train, features)
    pipelines, results = {}, {}
    with threads_for(outcome.size):
        for name in models:
            pipeline = PIPELINES[name](features, seed=seed).fit(train_frame, y_train)
            pipelines[name] = pipeline
            results[name] = evaluate(predict(pipeline, test_frame), y_test)
            if folds:
                results[name]["cv"] = cross_validate(name, features, frame, outcome, folds=folds, seed=seed)
    first = results[models[0]]
    result = {
        "auc": first["auc"], "n_train": int(split.train.size), "n_test": int(split.test.size),
        "split": split.description, "lift_top_decile": first["lift_top_decile"], "brier": first["brier"],
        "model": models[0], "target": target, "rows": int(outcome.size), "positives": positives,
        "positive_rate": round(positives / outcome.size, 4), "seed": seed,
        "models": results, "flags": [signal for signal in signals if signal["reason"]],
        "univariate_auc": {signal["column"]: signal["univariate_auc"] for signal in signals[:10]},
        "excluded": list(exclude), "dropped": features.dropped,
        "features": {"numeric": features.numeric, "categorical": features.categorical},
    }
    return Trained(result, pipelines, features, split)


def save(trained: Trained, directory: str | Path) -> list[Path]:
    """Write each fitted pipeline as ``NAME.skops`` and a ``card.json`` (target, features,
    split, figures, library versions) into ``directory``; returns the files written."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, pipeline in trained.pipelines.items():
        path = folder / f"{name}.skops"
        sio.dump(pipeline, path)
        written.append(path)
    card = {"kind": "leadscore train", "scikit_learn": sklearn.__version__, "skops": _skops_version(),
            "files": {name: f"{name}.skops" for name in trained.pipelines},
            "input_columns": {"numeric": trained.features.numeric, "categorical": trained.features.categorical},
            **{key: value for key, value in trained.result.items() if key != "models"},
            "models": {name: {key: value for key, value in figures.items() if key != "deciles"}
                       for name, figures in trained.result["models"].items()}}
    card_path = folder / "card.json"
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return [*written, card_path]


def _skops_version() -> str:
    import skops

    return str(skops.__version__)


def load_pipeline(path: str | Path) -> Pipeline:
    """A pipeline saved by :func:`save`, loaded with skops; a file holding any type beyond the
    scikit-learn, NumPy and SciPy ones these pipelines use is refused (never unpickled)."""
    untrusted = sio.get_untrusted_types(file=Path(path))
    unexpected = sorted(set(untrusted) - TRUSTED_TYPES)
    if unexpected:
        raise TableError(f"{path} holds types leadscore does not trust: {', '.join(unexpected)}")
    pipeline = sio.load(Path(path), trusted=untrusted)
    if not isinstance(pipeline, Pipeline):
        raise TableError(f"{path} does not hold a scikit-learn pipeline")
    return pipeline
