"""The sklearn linear-model shortcut: taken only for the library's own predict, and exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression  # type: ignore[import-untyped]
from sklearn.linear_model import (  # type: ignore[import-untyped]
    LinearRegression,
    LogisticRegression,
    Ridge,
    RidgeClassifier,
)

from modelyard.models import load_model, save_model
from modelyard.serving._inputs import input_spec
from modelyard.serving._predict import array_predict


def _served(model: object, data: object, tmp_path: Path) -> object:
    save_model(model, tmp_path / "pkg", input_example=data)
    loaded = load_model(tmp_path / "pkg")
    return array_predict(loaded, input_spec(loaded.signature))


def _rows(n: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=3.0, size=(n, width))


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("frame", [True, False])
def test_logistic_regression_takes_the_shortcut_and_predicts_exactly(
    classes: int, frame: bool, tmp_path: Path
) -> None:
    x, y = make_classification(
        n_samples=500, n_features=6, n_informative=4, n_classes=classes, random_state=0
    )
    data = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)]) if frame else x
    model = LogisticRegression(max_iter=500).fit(data, np.array(["no", "yes", "maybe"])[y])
    predict = _served(model, data[:5], tmp_path)
    assert predict.__name__ == "predict_classes"  # type: ignore[attr-defined]
    rows = _rows(2000, 6, 1)
    expected = model.predict(pd.DataFrame(rows, columns=data.columns) if frame else rows)
    assert np.array_equal(predict(rows), expected)  # type: ignore[operator]


@pytest.mark.parametrize("estimator", [LinearRegression(), Ridge(alpha=0.5)])
def test_linear_regressors_take_the_shortcut(estimator: object, tmp_path: Path) -> None:
    x, y = make_regression(n_samples=300, n_features=4, random_state=0)
    estimator.fit(x, y)  # type: ignore[attr-defined]
    predict = _served(estimator, x[:5], tmp_path)
    assert predict.__name__ == "scores"  # type: ignore[attr-defined]
    rows = _rows(500, 4, 2)
    assert np.array_equal(predict(rows), estimator.predict(rows))  # type: ignore[attr-defined,operator]


def test_ridge_classifier_with_its_own_decision_function(tmp_path: Path) -> None:
    x, y = make_classification(n_samples=300, n_features=5, random_state=1)
    model = RidgeClassifier().fit(x, y)
    predict = _served(model, x[:5], tmp_path)
    rows = _rows(500, 5, 3)
    assert np.array_equal(predict(rows), model.predict(rows))  # type: ignore[operator]


class _Shifted(LogisticRegression):  # type: ignore[misc]
    """A subclass with its own predict: the shortcut would be wrong for it."""

    def predict(self, x: object) -> np.ndarray:
        return np.asarray(super().predict(x)) + 1


def test_a_subclass_with_its_own_predict_keeps_its_predict(tmp_path: Path) -> None:
    x, y = make_classification(n_samples=300, n_features=5, random_state=2)
    model = _Shifted(max_iter=300).fit(x, y)
    predict = _served(model, x[:5], tmp_path)
    rows = _rows(50, 5, 4)
    assert np.array_equal(predict(rows), model.predict(rows))  # type: ignore[operator]
    assert getattr(predict, "__name__", "") != "predict_classes"
