"""Utility figures from pooled counts equal sklearn's from the predictions; tasks are inferred from the target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score, roc_auc_score

from eval_population import population
from fedtab.evaluators import evaluate
from fedtab.evaluators.inputs import prepare, resolve_layout
from fedtab.evaluators.utility import CLASSIFICATION, REGRESSION, Task, finalize_utility, fit_models, local_utility


def fitted(frame: pd.DataFrame, target: str):
    layout = resolve_layout(frame)
    prepared = prepare(frame, layout, "t")
    task = Task.infer(prepared, target, layout)
    return layout, task, fit_models(prepared, task, layout, seed=0, label="tstr")


def test_classification_figures_equal_sklearn():
    layout, task, models = fitted(population(1500, 3), "label")
    test = prepare(population(800, 2), layout, "holdout")
    counts = local_utility(models, test, task, layout, "tstr")
    scores = finalize_utility(counts | {k.replace("/tstr/", "/trtr/"): v for k, v in counts.items()}, task)
    x = test.drop(columns="label").assign(sector=test["sector"].fillna("\x00missing"))
    truth = test["label"].to_numpy()
    for model in scores.models:
        estimator = models[model.model]
        predicted = estimator.predict(x)
        proba = estimator.predict_proba(x)[:, list(estimator.classes_).index("high")]
        assert model.tstr["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
        assert model.tstr["f1_positive"] == pytest.approx(f1_score(truth, predicted, pos_label="high"))
        assert model.tstr["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
        assert model.tstr["roc_auc"] == pytest.approx(roc_auc_score(truth == "high", proba), abs=2e-3)
    assert task.positive == "high" and scores.relative_utility == pytest.approx(1.0)


def test_regression_is_inferred_and_scored_like_sklearn():
    train = population(1500, 3)
    layout, task, models = fitted(train, "wealth")
    assert task.kind == REGRESSION and task.primary_metric == "r2"
    test = prepare(population(600, 2), layout, "holdout")
    counts = local_utility(models, test, task, layout, "tstr")
    result = finalize_utility(counts | {k.replace("/tstr/", "/trtr/"): v for k, v in counts.items()}, task)
    x = test.drop(columns="wealth").assign(sector=test["sector"].fillna("\x00missing"))
    for model in result.models:
        predicted = models[model.model].predict(x)
        assert model.tstr["r2"] == pytest.approx(r2_score(test["wealth"], predicted))
        assert model.tstr["mae"] == pytest.approx(mean_absolute_error(test["wealth"], predicted))


def test_few_whole_numbers_make_a_classification_with_several_classes():
    def graded(n: int, seed: int) -> pd.DataFrame:
        frame = population(n, seed)
        return frame.assign(grade=frame["schooling"] // 3)

    frame = graded(1200, 1)
    layout, task, _ = fitted(frame, "grade")
    assert task.kind == CLASSIFICATION and len(task.classes) > 2 and task.positive is None
    report = evaluate(frame, graded(1200, 3), holdout=graded(800, 2), target="grade")
    model = report.utility.models[0]
    assert model.tstr["f1_positive"] is None and 0 < model.tstr["macro_f1"] <= 1 and model.tstr["roc_auc"] > 0.7


def test_a_synthetic_table_with_one_class_still_gets_scored():
    train = population(600, 1)
    single = train.assign(label="low")
    report = evaluate(train, single, holdout=population(600, 2), target="label")
    assert report.verdict("utility").level == "poor"
    assert all(m.tstr["f1_positive"] in (0.0, None) for m in report.utility.models)
    assert np.isfinite(report.utility.relative_utility)


def test_a_class_of_one_row_in_a_large_table_still_fits_gradient_boosting():
    """Above 10,000 rows boosting stops early on a stratified tenth; a one-row class (KDD's rarest attacks)
    made that split fail, so the whole utility evaluation crashed."""
    frame = population(12_000, 4)
    frame["label"] = frame["label"].astype(object)
    frame.loc[0, "label"] = "rare"
    layout, task, models = fitted(frame, "label")
    assert "rare" in task.classes and set(models) >= {"gradient boosting"}
    numbers = frame.drop(columns="label").select_dtypes("number").fillna(0)
    with pytest.raises(ValueError, match="least populated class"):  # control: boosting as it was configured before
        HistGradientBoostingClassifier(random_state=0).fit(numbers, frame["label"])
