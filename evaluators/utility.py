"""Machine-learning utility: train on synthetic, test on real (TSTR), next to train on real (TRTR).

Three model families — logistic (or ridge) regression, a random forest, gradient boosting
(sklearn's histogram GBM) — are trained on the synthetic table and tested on real holdout rows
that no party trained on; the same models trained on the real rows give the yardstick. The task
follows the target: categories, or whole numbers with at most 10 distinct values, make a
classification (accuracy, F1 of the positive class — the rarer one in the synthetic table —,
macro-F1, ROC-AUC); any other number a regression (R², MAE).

Predictions are reduced to additive counts — a confusion matrix, binned class probabilities,
five sums for a regression — so parties' test rows pool exactly. The headline, *relative
utility*, is the TSTR score above chance over the TRTR score above chance (ROC-AUC above 0.5,
or R² above 0), averaged over the models: 1 means the synthetic table teaches as much as the
real one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from fedtab.evaluators.encoding import category_text
from fedtab.evaluators.inputs import CATEGORICAL, ColumnLayout
from fedtab.evaluators.report import ModelScores, UtilityResult
from fedtab.evaluators.roc import auc_from_counts, bin_counts
from fedtab.evaluators.threads import one_thread
from fedtab.rng import derive_seed

CLASSIFICATION = "classification"
REGRESSION = "regression"
MODELS = ("logistic regression", "random forest", "gradient boosting")
PROBABILITY_EDGES = np.linspace(0.0, 1.0, 2001)[1:-1]
MAX_CLASSES_AS_NUMBERS = 10
MIN_SIGNAL = 0.05
Payload = dict[str, np.ndarray]
ModelDone = Callable[[str], None]


@dataclass(frozen=True)
class Task:
    """The target, the kind of task, and for a classification its classes and positive class."""

    target: str
    kind: str
    classes: tuple[str, ...] = ()
    positive: str | None = None

    @classmethod
    def infer(cls, synthetic: pd.DataFrame, target: str, layout: ColumnLayout, categories: tuple[str, ...] = ()) -> Task:
        """From the synthetic table's target (and the schema's public categories, when declared)."""
        values = synthetic[target]
        if layout.kinds[target] == CATEGORICAL or _few_whole_numbers(values):
            labels = pd.Series(_labels(values)).dropna()
            counts = labels.value_counts().reindex(sorted(set(labels) | set(categories)), fill_value=0)
            classes = tuple(counts.index)
            rarest = sorted(classes, key=lambda c: (counts[c], -classes.index(c)))[0] if len(classes) == 2 else None
            return cls(target, CLASSIFICATION, classes, rarest)
        return cls(target, REGRESSION)

    @property
    def primary_metric(self) -> str:
        return "roc_auc" if self.kind == CLASSIFICATION else "r2"


@one_thread()
def fit_models(frame: pd.DataFrame, task: Task, layout: ColumnLayout, seed: int, label: str, on_model: ModelDone | None = None) -> dict[str, Pipeline]:
    """The three model families fitted on ``frame`` (synthetic for TSTR, a party's real rows for TRTR)."""
    features = layout.without(task.target)
    x = _features(frame, features)
    y = _targets(frame[task.target], task)
    keep = ~pd.isna(y)
    x, y = x[keep], y[keep]
    fitted = {}
    for name in MODELS:
        model = _model(name, task, features, x, y, derive_seed(seed, "utility", label, name))
        fitted[name] = model.fit(x, y)
        if on_model is not None:
            on_model(f"{label} {name}")
    return fitted


@one_thread()
def local_utility(models: Mapping[str, Pipeline], test: pd.DataFrame, task: Task, layout: ColumnLayout, label: str) -> Payload:
    """Additive counts of how ``models`` predict the party's ``test`` rows."""
    x = _features(test, layout.without(task.target))
    out: Payload = {"sum:utility/test_rows": np.array([float(len(test))])}
    for name, model in models.items():
        key = f"sum:utility/{label}/{name}"
        if task.kind == REGRESSION:
            y = test[task.target].to_numpy(dtype=np.float64)
            error = y - model.predict(x)
            out[f"{key}/moments"] = np.array([len(y), y.sum(), (y * y).sum(), (error * error).sum(), np.abs(error).sum()])
            continue
        truth = pd.Categorical(_labels(test[task.target]), categories=task.classes).codes.astype(np.int64)
        truth = np.where(truth < 0, len(task.classes), truth)
        probability = _probabilities(model, x, task)
        predicted = probability.argmax(1)
        confusion = np.zeros((len(task.classes) + 1, len(task.classes) + 1))
        np.add.at(confusion, (truth, predicted), 1.0)
        out[f"{key}/confusion"] = confusion
        out[f"{key}/probabilities"] = np.stack([
            np.stack([bin_counts(probability[truth == c, c], PROBABILITY_EDGES), bin_counts(probability[truth != c, c], PROBABILITY_EDGES)])
            for c in range(len(task.classes))
        ])
    return out


def finalize_utility(payload: Mapping[str, np.ndarray], task: Task, trtr_note: str = "") -> UtilityResult:
    models = []
    for name in MODELS:
        scores = {label: _scores(payload, f"sum:utility/{label}/{name}", task) for label in ("tstr", "trtr")}
        models.append(ModelScores(name, scores["tstr"], scores["trtr"]))
    return UtilityResult(
        target=task.target,
        task=task.kind,
        primary_metric=task.primary_metric,
        relative_utility=relative_utility(models, task),
        test_rows=int(payload["sum:utility/test_rows"][0]),
        models=tuple(models),
        positive_class=task.positive,
        trtr_note=trtr_note,
    )


def relative_utility(models: list[ModelScores], task: Task) -> float:
    """Mean over models of (TSTR − chance) / (TRTR − chance) on the primary metric.

    A model whose TRTR score is less than ``MIN_SIGNAL`` above chance is left out: a ratio of two
    noises says nothing. NaN when no model learns from the real rows.
    """
    chance = 0.5 if task.kind == CLASSIFICATION else 0.0
    ratios = []
    for m in models:
        tstr, trtr = m.tstr.get(task.primary_metric), m.trtr.get(task.primary_metric)
        if tstr is not None and trtr is not None and np.isfinite(tstr) and trtr - chance >= MIN_SIGNAL:
            ratios.append((tstr - chance) / (trtr - chance))
    return float(np.mean(ratios)) if ratios else float("nan")


def _scores(payload: Mapping[str, np.ndarray], key: str, task: Task) -> dict[str, float | None]:
    if task.kind == REGRESSION:
        n, total, squares, sse, sae = payload[f"{key}/moments"]
        spread = squares - total * total / n
        return {"r2": float(1 - sse / spread) if spread > 0 else float("nan"), "mae": float(sae / n)}
    confusion = payload[f"{key}/confusion"]
    probabilities = payload[f"{key}/probabilities"]
    f1 = _f1_per_class(confusion)
    macro = f1[(confusion.sum(1) + confusion.sum(0)) > 0]
    rankable = [c for c, (pos, neg) in enumerate(probabilities) if pos.sum() > 0 and neg.sum() > 0]
    if task.positive is not None:
        rankable = [c for c in rankable if task.classes[c] == task.positive]
    aucs = [auc_from_counts(*probabilities[c]) for c in rankable]
    return {
        "accuracy": float(np.trace(confusion) / confusion.sum()),
        "f1_positive": float(f1[task.classes.index(task.positive)]) if task.positive is not None else None,
        "macro_f1": float(np.mean(macro)),
        "roc_auc": float(np.mean(aucs)) if aucs else float("nan"),
    }


def _f1_per_class(confusion: np.ndarray) -> np.ndarray:
    tp = np.diag(confusion)
    denominator = confusion.sum(1) + confusion.sum(0)
    return np.divide(2 * tp, denominator, out=np.zeros(len(tp)), where=denominator > 0)


def _probabilities(model: Pipeline, x: pd.DataFrame, task: Task) -> np.ndarray:
    """Probabilities in the task's class order; classes the synthetic table lacks pool into a last 'other' column."""
    out = np.zeros((len(x), len(task.classes) + 1))
    slots = [task.classes.index(c) if c in task.classes else len(task.classes) for c in model.classes_]
    np.add.at(out.T, slots, model.predict_proba(x).T)
    return out


def _model(name: str, task: Task, features: ColumnLayout, x: pd.DataFrame, y: np.ndarray, seed: int) -> Pipeline:
    seed = seed % (2**32)
    classify = task.kind == CLASSIFICATION
    if classify and len(np.unique(y)) < 2:
        return make_pipeline(_one_hot(features), DummyClassifier(strategy="prior"))
    if len(x) < 2:
        return make_pipeline(_one_hot(features), DummyRegressor())
    if name == "logistic regression":
        return make_pipeline(_one_hot(features), LogisticRegression(max_iter=500) if classify else Ridge(alpha=1.0))
    if name == "random forest":
        forest = RandomForestClassifier if classify else RandomForestRegressor
        return make_pipeline(_ordinal(features), forest(n_estimators=50, min_samples_leaf=3, random_state=seed))
    boosting = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
    few = [x[c].nunique() <= 250 for c in features.categorical]
    mask = [False] * len(features.numerical) + few
    # Early stopping (on above 10,000 rows) holds out a stratified tenth, which fails on a class of one row.
    stop = "auto" if not classify or np.unique(y, return_counts=True)[1].min() >= 2 else False
    return make_pipeline(_ordinal(features), boosting(categorical_features=mask if any(mask) else None,
                                                      early_stopping=stop, random_state=seed))


def _one_hot(features: ColumnLayout) -> ColumnTransformer:
    return ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(strategy="mean", keep_empty_features=True), StandardScaler()), features.numerical),
        ("categories", OneHotEncoder(handle_unknown="ignore"), features.categorical),
    ])


def _ordinal(features: ColumnLayout) -> ColumnTransformer:
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan)
    return ColumnTransformer([("numbers", "passthrough", features.numerical), ("categories", encoder, features.categorical)])


def _features(frame: pd.DataFrame, features: ColumnLayout) -> pd.DataFrame:
    columns = {name: frame[name].to_numpy(dtype=np.float64) for name in features.numerical}
    columns |= {name: category_text(frame[name]) for name in features.categorical}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))


def _targets(series: pd.Series, task: Task) -> np.ndarray:
    return series.to_numpy(dtype=np.float64) if task.kind == REGRESSION else _labels(series)


def _labels(series: pd.Series) -> np.ndarray:
    """Class labels as text; whole numbers without a trailing '.0' so 1 and 1.0 are one class."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        numbers = series.to_numpy(dtype=np.float64)
        whole = np.mod(numbers, 1) == 0
        text = np.where(whole, np.nan_to_num(numbers).astype(np.int64).astype(str), numbers.astype(str))
        return np.where(np.isnan(numbers), None, text).astype(object)
    present = series.notna().to_numpy()
    text = np.full(len(series), None, dtype=object)
    text[present] = series[present].astype(str).to_numpy()
    return text


def _few_whole_numbers(values: pd.Series) -> bool:
    numbers = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=np.float64)
    return numbers.size > 0 and bool(np.all(np.mod(numbers, 1) == 0)) and np.unique(numbers).size <= MAX_CLASSES_AS_NUMBERS
