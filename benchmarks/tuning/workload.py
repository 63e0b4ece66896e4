"""One tuning study for the tuning benchmark, run in its own process; prints JSON.

    python workload.py optuna|local|ray N_TRIALS TRIAL_S WORKERS

``optuna``: Optuna alone (in-memory study, ``n_jobs`` threads: the objective sleeps, so
threads run in parallel). ``local`` / ``ray``: ``my.tune`` against the modelyard server in
MODELYARD_TRACKING_URI, with 2 local worker processes or on the Ray cluster in RAY_ADDRESS.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import time
from typing import Any


def objective_value(x: float, y: float) -> float:
    return (x - 0.3) ** 2 + (y - 0.7) ** 2


Span = tuple[float, float, float]  # worker id, objective start, objective end (epoch s)


def timings(t0: float, wall: float, spans: list[Span]) -> dict[str, Any]:
    """Start-up, all-busy time and the per-trial overhead from the objectives' own clocks.

    Overhead per trial: on each worker, the gap from one objective's end to the start of
    its next (the worker's writes, the driver's bookkeeping, the dispatch), averaged
    over all such gaps. Start-up (to the first objective) and each worker's first start
    are reported apart.
    """
    by_worker: dict[float, list[Span]] = {}
    for span in spans:
        by_worker.setdefault(span[0], []).append(span)
    gaps: list[float] = []
    for own in by_worker.values():
        own.sort(key=lambda s: s[1])
        gaps.extend(nxt[1] - cur[2] for cur, nxt in itertools.pairwise(own))
    return {
        "wall_s": wall,
        "startup_s": min(s[1] for s in spans) - t0,
        "all_busy_s": max(min(s[1] for s in own) for own in by_worker.values()) - t0,
        "workers_seen": len(by_worker),
        "overhead_ms_per_trial": sum(gaps) / len(gaps) * 1000 if gaps else 0.0,
    }


def run_optuna(n_trials: int, trial_s: float, workers: int) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spans: list[Span] = []

    def objective(trial: optuna.Trial) -> float:
        started = time.time()
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_float("y", 0.0, 1.0)
        time.sleep(trial_s)
        spans.append((threading.get_ident(), started, time.time()))
        return objective_value(x, y)

    t0 = time.time()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=n_trials, n_jobs=workers)
    wall = time.time() - t0
    return {**timings(t0, wall, spans), "best": study.best_value}


def run_modelyard(executor: str, n_trials: int, trial_s: float, workers: int) -> dict[str, Any]:
    import modelyard as my

    def objective(params: dict[str, float]) -> dict[str, float]:
        started_at = time.time()  # logged with the trial, as extra metrics
        time.sleep(trial_s)
        loss = objective_value(params["x"], params["y"])
        return {"loss": loss, "started_at": started_at, "ended_at": time.time(), "pid": os.getpid()}

    my.set_experiment(f"bench-{executor}")
    t0 = time.time()
    study = my.tune(
        objective,
        space={"x": my.uniform(0.0, 1.0), "y": my.uniform(0.0, 1.0)},
        metric="loss",
        mode="min",
        n_trials=n_trials,
        sampler="tpe",
        pruner="none",
        executor=executor,
        workers=workers,
        seed=0,
    )
    wall = time.time() - t0
    spans: list[Span] = []
    for trial in study.trials:
        metrics = my.get_run(trial.run_id).metrics
        spans.append((metrics["pid"].value, metrics["started_at"].value, metrics["ended_at"].value))
    return {**timings(t0, wall, spans), "best": study.best_value}


def main() -> None:
    mode, n_trials, trial_s, workers = (
        sys.argv[1],
        int(sys.argv[2]),
        float(sys.argv[3]),
        int(sys.argv[4]),
    )
    if mode == "optuna":
        out = run_optuna(n_trials, trial_s, workers)
    else:
        out = run_modelyard(mode, n_trials, trial_s, workers)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
