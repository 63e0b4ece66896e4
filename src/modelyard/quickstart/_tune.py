"""Step 10: a tuning sweep and a cached pipeline on local worker processes.

The sweep tunes a random forest's size and depth on the quickstart dataset with Optuna's
TPE sampler, 8 trials two at a time, each trial a child run of the study's run. The
pipeline prepare → fit → evaluate runs twice: the second run finds every step in the
cache (same code, same input digests, same params) and runs nothing.
The functions live at module level so worker processes import them by name.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from modelyard.pipelines import DatasetRef, Pipeline, step
from modelyard.quickstart._data import TARGET
from modelyard.quickstart._result import TuneSummary

if TYPE_CHECKING:
    from modelyard.config import Settings

EXPERIMENT = "quickstart-tuning"
TRIALS = 8
WORKERS = 2
SEED = 0


def _split(dataset_ref: str) -> tuple[Any, Any, Any, Any]:
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

    import modelyard as my

    frame = my.use_dataset(dataset_ref, as_="pandas")
    features, labels = frame.drop(columns=[TARGET]), frame[TARGET]
    parts: tuple[Any, Any, Any, Any] = tuple(
        train_test_split(features, labels, test_size=0.25, random_state=SEED, stratify=labels)
    )
    return parts


def forest_auc(dataset_ref: str, params: dict[str, Any]) -> float:
    """The objective: held-out ROC AUC of a random forest with these parameters."""
    from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]
    from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

    x_train, x_test, y_train, y_test = _split(dataset_ref)
    model = RandomForestClassifier(
        n_estimators=int(params["n_estimators"]),
        max_depth=int(params["max_depth"]),
        random_state=SEED,
    ).fit(x_train, y_train)
    return float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))


@step(cache=True)
def prepare(dataset: DatasetRef) -> dict[str, Any]:
    """Read the dataset version and split it."""
    x_train, x_test, y_train, y_test = _split(str(dataset))
    return {"x_train": x_train, "x_test": x_test, "y_train": y_train, "y_test": y_test}


@step(cache=True)
def fit(prepare: dict[str, Any], c: float = 1.0) -> Any:
    """A scaled logistic regression on the training split."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    return model.fit(prepare["x_train"], prepare["y_train"])


@step(cache=True)
def evaluate(fit: Any, prepare: dict[str, Any]) -> float:
    """Held-out ROC AUC of the fitted model."""
    from sklearn.metrics import roc_auc_score

    import modelyard as my

    auc = float(roc_auc_score(prepare["y_test"], fit.predict_proba(prepare["x_test"])[:, 1]))
    my.log_metric("roc_auc", auc)
    return auc


PIPELINE = Pipeline([prepare, fit, evaluate], name="quickstart-train")


def sweep_and_pipeline(dataset_ref: str, settings: Settings) -> TuneSummary:
    """Run the sweep, then the pipeline twice, on one pool of ``WORKERS`` processes."""
    import modelyard as my
    from modelyard.data import parse_ref
    from modelyard.executors import open_executor, worker_env

    my.set_experiment(EXPERIMENT)
    executor = open_executor("local", workers=WORKERS, env=worker_env(settings))
    try:
        study = my.tune(
            functools.partial(forest_auc, dataset_ref),
            {"n_estimators": my.randint(10, 120), "max_depth": my.randint(2, 10)},
            metric="roc_auc",
            mode="max",
            n_trials=TRIALS,
            sampler="tpe",
            pruner="none",
            executor=executor,
            seed=SEED,
        )
        params = {"dataset": parse_ref(dataset_ref)}
        runs = [PIPELINE.run(executor, params=params, experiment=EXPERIMENT) for _ in range(2)]
    finally:
        executor.close()
    for run in runs:
        run.raise_for_state()
    return TuneSummary(
        study=study.name,
        study_run_id=study.run_id,
        trials=len(study.trials),
        best_value=study.best_value,
        best_params=dict(study.best_params),
        pipeline_runs=tuple(r.run_id for r in runs),
        cached_steps=tuple(sum(s.cache_hit for s in r.steps.values()) for r in runs),
        steps=len(PIPELINE.steps),
    )
