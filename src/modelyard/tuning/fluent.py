"""The tuning SDK: ``my.tune``, ``my.report``, ``my.TrialPruned`` and the search spaces.

    import modelyard as my

    def train(params):
        for epoch in range(20):
            auc = fit_one_epoch(params["lr"], params["depth"])
            my.report(epoch, auc)  # may raise my.TrialPruned: let it propagate
        return auc

    study = my.tune(train, {"lr": my.loguniform(1e-4, 1e-1), "depth": my.randint(2, 12)},
                    metric="auc", mode="max", n_trials=50)

``study.best_params`` is then the best trial's parameters; every trial is a child run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from modelyard.core.clock import SystemClock
from modelyard.tuning._config import build_config, check_executor
from modelyard.tuning._result import Study
from modelyard.tuning._space import Distribution, Scalar

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler

    from modelyard.executors import Executor

__all__ = ["tune"]


def tune(
    fn: Callable[[dict[str, Scalar]], object],
    space: Mapping[str, Distribution],
    *,
    metric: str = "objective",
    mode: str = "min",
    n_trials: int = 50,
    sampler: str | BaseSampler = "tpe",
    pruner: str | BasePruner = "median",
    executor: str | Executor = "local",
    workers: int | None = None,
    study: str | None = None,
    seed: int | None = None,
    patience: int | None = None,
    target: float | None = None,
    timeout_s: float | None = None,
    register_best: str | None = None,
) -> Study:
    """Search ``space`` for the parameters that optimize ``fn``; every trial is a run.

    The study is a parent run in the current experiment (nested under the active run, if
    any), each trial a child run ``trial-<n>`` with its params and metric. Calling again
    with the name of a stored study resumes it: finished trials are kept, trials a dead
    driver left running are run again, until ``n_trials`` trials have finished in total.

    Args:
        fn: The objective. It takes one dict of parameters and returns the value (a
            float), a dict holding ``metric`` (its other numbers are logged too), or None
            after ``my.log_metric(metric, value)``. Raise ``my.TrialPruned`` (or let
            ``my.report`` raise it) to stop early. It runs in a worker process, so
            anything it uses must be importable or picklable there.
        space: ``{name: my.uniform(...) | my.loguniform(...) | my.randint(...) |
            my.choice([...])}``; ``randint`` includes its high end.
        metric: The metric name the value is logged as.
        mode: ``"min"`` or ``"max"``.
        n_trials: Finished trials (complete, pruned or failed) the study ends with; a
            grid study ends sooner when its grid is smaller.
        sampler: ``"tpe"`` (seeded), ``"random"``, ``"grid"`` (every point of a discrete
            space once), ``"cmaes"``, or an Optuna sampler.
        pruner: ``"median"``, ``"percentile"`` (25th), ``"successive_halving"``,
            ``"none"``, or an Optuna pruner. It judges ``my.report`` values in the worker.
        executor: ``"local"`` (processes here), ``"ray"``, ``"ray://host:port"``, or an
            ``Executor`` (yours to close; give it ``worker_env(settings)`` as its env).
        workers: Trials in flight at once (default: the executor's slots).
        study: The study name (default ``<fn name>-<8 hex>``); a stored name resumes.
        seed: Seeds the sampler.
        patience: Stop after this many finished trials without a better best.
        target: Stop once the best value reaches this (>= for max, <= for min).
        timeout_s: Stop starting trials after this many seconds; running ones finish.
        register_best: Register the model the best trial logged (``my.log_model``, path
            ``model``) as a new version of this registered model, at the end.

    Returns:
        The study: its trials, best trial, state (COMPLETED, or STOPPED with a reason).

    Raises:
        InvalidInput: a bad argument, named, before anything is written; or a stored
            study of that name with another space, metric or mode.
        StudyFailed: the first 3 trials all failed (the message names the first error).
        ExecutorUnavailable: the executor cannot start (nothing is written).
    """
    from modelyard.tuning._tune import run_study

    config = build_config(
        fn,
        space=space,
        metric=metric,
        mode=mode,
        n_trials=n_trials,
        sampler=sampler,
        pruner=pruner,
        workers=workers,
        study=study,
        seed=seed,
        patience=patience,
        target=target,
        timeout_s=timeout_s,
        register_best=register_best,
    )
    check_executor(executor)
    return run_study(fn, config, executor, SystemClock())
