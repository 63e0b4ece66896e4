"""Runs page benchmark: server time of the web UI's runs table with 10,000 runs.

    .venv/bin/python benchmarks/ui/bench_runs_page.py [--runs 10000] [--requests 30]
        [--warmup 3] [--history-every 10] [--steps 100]

Seeds a fresh home (SQLite + local folder) with one experiment of --runs runs, each with
5 params, 5 latest metrics and 3 tags; every --history-every-th run also has --steps
points of history for each metric. Rows go in with the store's bulk path (multi-row
INSERTs in one transaction, the way ``log_batch`` writes a batch), which takes seconds
where 10,000 HTTP round trips would take minutes; what is timed reads the same tables.

Then, in process through the ASGI app (Starlette's TestClient) and signed in with a
browser session (cookie, as a browser is), it times GET of the runs table: the first
page in the default order, sorted by a metric, and filtered; plus the experiments list
and one run's page for context. Each is requested --warmup times untimed, then
--requests times; the table shows the median and p90 wall time per request (which is
an upper bound of server time: it includes the in-process client's own overhead).
The goal (issue 17) is the runs table's first page under 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from modelyard.auth import LOCAL_PRINCIPAL  # noqa: E402
from modelyard.config import Settings  # noqa: E402
from modelyard.server import AppContext, bootstrap_platform, build_context, create_app  # noqa: E402
from modelyard.store.schema import (  # noqa: E402
    LatestMetricRow,
    MetricRow,
    ParamRow,
    RunRow,
    RunTagRow,
)
from modelyard.testing.harness import UI_PASSWORD, sign_in  # noqa: E402

GOAL_MS = 300.0
METRICS = ("auc", "loss", "accuracy", "f1", "rmse")
PARAMS = {
    "lr": ("0.001", "0.01", "0.1"),
    "depth": ("2", "4", "8", "16"),
    "optimizer": ("adam", "sgd"),
    "batch_size": ("32", "64", "128"),
    "dropout": ("0.0", "0.1", "0.3"),
}
CHUNK = 2000


def seed(ctx: AppContext, runs: int, history_every: int, steps: int) -> tuple[int, str, float]:
    """One experiment of ``runs`` runs; returns its id, one run's id and the seconds taken."""
    started = time.perf_counter()
    experiment = ctx.tracking.create_experiment(LOCAL_PRINCIPAL, "default", "ui-bench")
    rnd = random.Random(17)
    base_ms = int(time.time() * 1000) - runs * 60_000
    rows: dict[Any, list[dict[str, Any]]] = {
        RunRow: [],
        ParamRow: [],
        RunTagRow: [],
        LatestMetricRow: [],
        MetricRow: [],
    }
    sample_id = ""
    for i in range(runs):
        run_id = f"{i:08x}{rnd.getrandbits(96):024x}"
        sample_id = sample_id or run_id
        start = base_ms + i * 60_000
        name = f"run-{i:05d}"
        rows[RunRow].append(
            {
                "id": run_id,
                "experiment_id": experiment.id,
                "name": name,
                "status": "FINISHED" if i % 17 else "FAILED",
                "start_time_ms": start,
                "end_time_ms": start + rnd.randrange(5_000, 3_600_000),
                "user": "admin",
                "parent_run_id": None,
                "lifecycle_stage": "active",
            }
        )
        for key, choices in PARAMS.items():
            rows[ParamRow].append({"run_id": run_id, "key": key, "value": rnd.choice(choices)})
        for key, value in (("mlflow.runName", name), ("mlflow.user", "admin"), ("team", "ml")):
            rows[RunTagRow].append({"run_id": run_id, "key": key, "value": value})
        history = steps if i % history_every == 0 else 1
        for key in METRICS:
            values = [rnd.random() for _ in range(history)]
            last = history - 1
            metric = {"run_id": run_id, "key": key, "is_nan": False, "timestamp_ms": start}
            rows[LatestMetricRow].append({**metric, "value": values[last], "step": last})
            rows[MetricRow].extend(
                {**metric, "value": v, "step": step} for step, v in enumerate(values)
            )
    with ctx.store.sql.transaction() as s:
        for table, items in rows.items():  # runs first: the others refer to them
            for at in range(0, len(items), CHUNK):
                s.execute(insert(table), items[at : at + CHUNK])
    return experiment.id, sample_id, time.perf_counter() - started


def timed(client: TestClient, url: str, params: dict[str, str], warmup: int, n: int) -> list[float]:
    headers = {"Accept": "text/html"}
    for _ in range(warmup):
        response = client.get(url, params=params, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} {params}: {response.status_code}\n{response.text[:500]}")
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get(url, params=params, headers=headers)
        out.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200
    return out


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--history-every", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="modelyard-bench-ui-"))
    try:
        result = bench(tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = ROOT / "benchmarks" / "results" / "ui_runs_page.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwrote {out}")


def bench(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    ctx = build_context(Settings(home=tmp / "home"))
    try:
        bootstrap_platform(ctx, "http://testserver")
        print(f"seeding {args.runs} runs …", flush=True)
        experiment_id, run_id, seed_s = seed(ctx, args.runs, args.history_every, args.steps)
        ctx.auth.set_password(LOCAL_PRINCIPAL, "admin", UI_PASSWORD)
        table = f"/ui/p/default/experiments/{experiment_id}"
        cases = [
            ("runs table, first page, default order (50 rows)", table, {}),
            ("runs table, sorted by metrics.auc DESC", table, {"order": "metrics.auc DESC"}),
            (
                "runs table, filtered (metric and param)",
                table,
                {"filter": "metrics.auc > 0.5 and params.depth = '4'"},
            ),
            ("runs table, 500 rows", table, {"max_results": "500"}),
            ("experiments list", "/ui/p/default/experiments", {}),
            ("one run's page (charts of 5 x 100 points)", f"/ui/p/default/runs/{run_id}", {}),
        ]
        with TestClient(create_app(ctx), raise_server_exceptions=True) as client:
            browser = sign_in(client.app, "admin", UI_PASSWORD)
            measured: list[dict[str, Any]] = []
            for label, url, params in cases:
                print(f"timing: {label}", flush=True)
                ms = timed(browser.client, url, params, args.warmup, args.requests)
                measured.append(
                    {
                        "case": label,
                        "url": url,
                        "params": params,
                        "median_ms": round(statistics.median(ms), 2),
                        "p90_ms": round(p90(ms), 2),
                        "max_ms": round(max(ms), 2),
                        "n": len(ms),
                    }
                )
    finally:
        ctx.store.close()
    first = measured[0]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "command": "python benchmarks/ui/bench_runs_page.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "runs": args.runs,
        "seed_s": round(seed_s, 2),
        "goal_ms": GOAL_MS,
        "first_page_median_ms": first["median_ms"],
        "first_page_p90_ms": first["p90_ms"],
        "meets_goal": first["p90_ms"] < GOAL_MS,
        "cases": measured,
    }


def print_table(r: dict[str, Any]) -> None:
    print(f"\n{r['runs']:,} runs (seeded in {r['seed_s']} s); wall ms per GET, in process")
    width = max(len(c["case"]) for c in r["cases"])
    print(f"{'case'.ljust(width)}  {'median':>8}  {'p90':>8}  {'max':>8}")
    for c in r["cases"]:
        print(
            f"{c['case'].ljust(width)}  {c['median_ms']:8.1f}  {c['p90_ms']:8.1f}"
            f"  {c['max_ms']:8.1f}"
        )
    verdict = "meets" if r["meets_goal"] else "MISSES"
    print(f"first page p90 {r['first_page_p90_ms']} ms: {verdict} the {r['goal_ms']:.0f} ms goal")


if __name__ == "__main__":
    main()
