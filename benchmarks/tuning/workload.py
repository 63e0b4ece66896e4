"""One tuning study for the tuning benchmark, run in its own process; prints JSON.

    python workload.py optuna|local|ray N_TRIALS TRIAL_S WORKERS

``optuna``: Optuna alone (in-memory study, ``n_jobs`` threads: the objective sleeps, so
threads run in parallel). ``local`` / ``ray``: ``my.tune`` against the modelyard server in
MODELYARD_TRACKING_URI, with 2 local worker processes or on the Ray cluster in RAY_ADDRESS.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def objective_value(x: float, y: float) -> float:
    return (x - 0.3) ** 2 + (y - 0.7) ** 2


def run_optuna(n_trials: int, trial_s: float, workers: int) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    starts: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        starts.append(time.time())
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_float("y", 0.0, 1.0)
        time.sleep(trial_s)
        return objective_value(x, y)

    t0 = time.time()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=n_trials, n_jobs=workers)
    wall = time.time() - t0
    return {"wall_s": wall, "startup_s": min(starts) - t0, "best": study.best_value}


def run_modelyard(executor: str, n_trials: int, trial_s: float, workers: int) -> dict[str, Any]:
    import modelyard as my

    def objective(params: dict[str, float]) -> float:
        time.sleep(trial_s)
        return objective_value(params["x"], params["y"])

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
    first = min(my.get_run(t.run_id).start_time_ms for t in study.trials) / 1000
    return {"wall_s": wall, "startup_s": first - t0, "best": study.best_value}


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
