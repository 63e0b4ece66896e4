"""Timed workloads, run in a subprocess of the venv being measured; each prints one JSON line.

python workloads.py modelyard-sdk  N            (needs MODELYARD_TRACKING_URI, _HOME)
python workloads.py mlflow-fluent  N            (needs MLFLOW_TRACKING_URI)
python workloads.py modelyard-seed RUNS         then modelyard-search Q
python workloads.py mlflow-seed RUNS            then mlflow-search Q
python workloads.py sqlite-floor N
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from typing import Any

FILTER = "metrics.m0 > 0.5 and params.p1 = 'v1'"
ORDER = ["metrics.m1 DESC"]


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def modelyard_sdk(n: int) -> None:
    import modelyard as my

    my.set_experiment("bench")
    started = time.perf_counter()
    blocked = 0.0
    with my.start_run(name="bench"):
        for step in range(n):
            t0 = time.perf_counter()
            my.log_metric("loss", 1.0 / (step + 1), step=step)
            blocked += time.perf_counter() - t0
        my.flush()  # durable: every value is committed on the server
    total = time.perf_counter() - started
    emit(n=n, total_s=total, per_metric_ms=total * 1000 / n, blocked_s=blocked)


def mlflow_fluent(n: int) -> None:
    import mlflow

    mlflow.set_experiment("bench")
    started = time.perf_counter()
    with mlflow.start_run():
        for step in range(n):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    total = time.perf_counter() - started
    emit(n=n, total_s=total, per_metric_ms=total * 1000 / n, blocked_s=total)


def _values(i: int) -> tuple[dict[str, str], dict[str, float]]:
    rnd = random.Random(i)
    return {f"p{j}": f"v{rnd.randrange(3)}" for j in range(10)}, {
        f"m{j}": rnd.random() for j in range(10)
    }


def modelyard_seed(runs: int) -> None:
    from modelyard.client import connect
    from modelyard.core.tracking import LogBatch, Metric, RunStatus

    started = time.perf_counter()
    with connect() as client:
        experiment = client.create_experiment("default", "search-bench")
        for i in range(runs):
            run = client.create_run(experiment.id, name=f"run-{i}")
            params, metrics = _values(i)
            client.log_batch(
                run.id,
                LogBatch(
                    metrics=tuple(Metric(k, v, 0, 0) for k, v in metrics.items()),
                    params=tuple(params.items()),
                ),
            )
            client.update_run(run.id, status=RunStatus.FINISHED)
    emit(runs=runs, seed_s=time.perf_counter() - started, experiment_id=experiment.id)


def modelyard_search(queries: int, experiment_id: int) -> None:
    from modelyard.client import connect

    times = []
    with connect() as client:
        for _ in range(queries):
            t0 = time.perf_counter()
            page = client.search_runs(
                [experiment_id], filter_string=FILTER, order_by=ORDER, max_results=100
            )
            times.append(time.perf_counter() - t0)
    emit(p50_ms=statistics.median(times) * 1000, results=len(page.items))


def mlflow_seed(runs: int) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient()
    started = time.perf_counter()
    experiment_id = client.create_experiment("search-bench")
    for i in range(runs):
        run = client.create_run(experiment_id, run_name=f"run-{i}")
        params, metrics = _values(i)
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
        )
        client.set_terminated(run.info.run_id)
    emit(runs=runs, seed_s=time.perf_counter() - started, experiment_id=experiment_id)


def mlflow_search(queries: int, experiment_id: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    times = []
    for _ in range(queries):
        t0 = time.perf_counter()
        runs = client.search_runs(
            [experiment_id], filter_string=FILTER, order_by=ORDER, max_results=100
        )
        times.append(time.perf_counter() - t0)
    emit(p50_ms=statistics.median(times) * 1000, results=len(runs))


def sqlite_floor(n: int) -> None:
    path = os.path.join(tempfile.mkdtemp(), "floor.db")
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE metrics (run_id TEXT, key TEXT, value REAL, step INT, timestamp INT)")
    rows = [("r", "loss", 1.0 / (i + 1), i, 0) for i in range(n)]
    started = time.perf_counter()
    with db:
        db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
    total = time.perf_counter() - started
    db.close()
    emit(n=n, total_s=total, per_metric_ms=total * 1000 / n, blocked_s=total)


if __name__ == "__main__":
    kind, args = sys.argv[1], sys.argv[2:]
    if kind == "modelyard-search":
        modelyard_search(int(args[0]), int(args[1]))
    elif kind == "mlflow-search":
        mlflow_search(int(args[0]), args[1])
    else:
        {
            "modelyard-sdk": modelyard_sdk,
            "mlflow-fluent": mlflow_fluent,
            "modelyard-seed": modelyard_seed,
            "mlflow-seed": mlflow_seed,
            "sqlite-floor": sqlite_floor,
        }[kind](int(args[0]))
