"""Step 3: train three candidate models as tracked runs that read the dataset version.

Each run reads ``quickstart-data@vN`` through ``my.use_dataset`` (so lineage records
dataset → run), logs its parameters, held-out accuracy / F1 / ROC AUC, a ROC curve plot
(when matplotlib, the ``plot`` extra, is installed) and the model package with an input
example.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.quickstart._data import TARGET
from modelyard.quickstart._result import RunSummary

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

EXPERIMENT = "quickstart"
TEST_SIZE = 0.25
SEED = 0


@dataclass(frozen=True)
class Candidate:
    """A model to try: a run name, how to build it, and the parameters to log."""

    name: str
    model: str
    build: Callable[[], Any]
    params: dict[str, object]


def candidates() -> tuple[Candidate, ...]:
    """Logistic regression (scaled), a random forest and gradient boosting."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    return (
        Candidate(
            "logistic-regression",
            "LogisticRegression (scaled)",
            lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)),
            {"C": 1.0, "max_iter": 1000, "scaler": "StandardScaler"},
        ),
        Candidate(
            "random-forest",
            "RandomForestClassifier",
            lambda: RandomForestClassifier(n_estimators=100, random_state=SEED),
            {"n_estimators": 100, "max_depth": None, "random_state": SEED},
        ),
        Candidate(
            "gradient-boosting",
            "GradientBoostingClassifier",
            lambda: GradientBoostingClassifier(random_state=SEED),
            {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 3, "random_state": SEED},
        ),
    )


def train_candidates(
    dataset_ref: str, on_done: Callable[[RunSummary], None] = lambda _s: None
) -> list[RunSummary]:
    """Train every candidate in experiment ``quickstart``; one finished run each."""
    import modelyard as my

    my.set_experiment(EXPERIMENT)
    summaries = []
    for candidate in candidates():
        summary = train_one(candidate, dataset_ref)
        on_done(summary)
        summaries.append(summary)
    return summaries


def train_one(candidate: Candidate, dataset_ref: str) -> RunSummary:
    """One tracked run: read the data, fit, evaluate, log metrics, plot and model."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score, roc_curve  # type: ignore[import-untyped]
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

    import modelyard as my

    with my.start_run(name=candidate.name, tags={"modelyard.quickstart": "true"}) as run:
        frame: pd.DataFrame = my.use_dataset(dataset_ref, as_="pandas")
        features, labels = frame.drop(columns=[TARGET]), frame[TARGET]
        x_train, x_test, y_train, y_test = train_test_split(
            features, labels, test_size=TEST_SIZE, random_state=SEED, stratify=labels
        )
        my.log_params({"model": candidate.model, "dataset": dataset_ref,
                       "test_size": TEST_SIZE, **candidate.params})  # fmt: skip
        model = candidate.build()
        started = time.perf_counter()
        model.fit(x_train, y_train)
        fit_s = time.perf_counter() - started
        scores = model.predict_proba(x_test)[:, 1]
        predicted = model.predict(x_test)
        metrics = {
            "accuracy": float(accuracy_score(y_test, predicted)),
            "f1": float(f1_score(y_test, predicted)),
            "roc_auc": float(roc_auc_score(y_test, scores)),
            "fit_s": fit_s,
        }
        my.log_metrics(metrics)
        fpr, tpr, _ = roc_curve(y_test, scores)
        with tempfile.TemporaryDirectory(prefix="modelyard-quickstart-") as tmp:
            plot = write_roc_png(Path(tmp) / "roc_curve.png", fpr, tpr, candidate.name,
                                 metrics["roc_auc"])  # fmt: skip
            if plot is not None:
                my.log_artifact(plot, "plots")
        my.log_model(model, "model", input_example=x_train[:5])
        return RunSummary(run.id, candidate.name, candidate.model, metrics, fit_s)


def write_roc_png(
    path: Path, fpr: np.ndarray[Any, Any], tpr: np.ndarray[Any, Any], name: str, auc: float
) -> Path | None:
    """Plot a ROC curve to ``path`` with matplotlib's Agg canvas (no pyplot, no GUI).

    Returns None, drawing nothing, without matplotlib (the ``plot`` extra): the
    quickstart runs on a core install and the plot is only an extra artifact.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None

    figure = Figure(figsize=(4.5, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})", linewidth=2)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title("ROC curve, held-out split")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    return path


def best_of(runs: list[RunSummary]) -> RunSummary:
    """The run with the highest ROC AUC (the first one on a tie)."""
    return max(runs, key=lambda r: r.metrics["roc_auc"])
