"""Small trained models and data for the model-package tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="session")
def class_frame() -> tuple[pd.DataFrame, np.ndarray]:
    x, y = make_classification(n_samples=120, n_features=4, random_state=0)
    return pd.DataFrame(x, columns=FEATURES), y


@pytest.fixture(scope="session")
def reg_array() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_regression(n_samples=120, n_features=3, noise=0.1, random_state=0)
    return x, y


@pytest.fixture(scope="session")
def forest(class_frame: tuple[pd.DataFrame, np.ndarray]) -> RandomForestClassifier:
    x, y = class_frame
    return RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)


@pytest.fixture(scope="session")
def scaled_logreg(class_frame: tuple[pd.DataFrame, np.ndarray]) -> Pipeline:
    x, y = class_frame
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)


@pytest.fixture(scope="session")
def linreg(reg_array: tuple[np.ndarray, np.ndarray]) -> LinearRegression:
    x, y = reg_array
    return LinearRegression().fit(x, y)
