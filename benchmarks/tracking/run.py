"""Tracking benchmark: modelyard vs `mlflow server` (sqlite backend), same machine, same run.

    .venv/bin/python benchmarks/tracking/run.py [--rounds 3] [--metrics 10000]
        [--mlflow-metrics 300] [--runs 1000] [--queries 20]

MLflow is installed by this script into its own virtual environment under a temporary
folder (uv), so it never touches the project's environment. Workloads alternate
(modelyard, MLflow, modelyard, …); the table reports medians over rounds and ratios.
MLflow's per-metric time is measured on --mlflow-metrics values (10,000 would take
~10 minutes per round at its speed); the per-metric time is what is compared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORKLOADS = HERE / "workloads.py"
MLFLOW_VERSION = "3.17.2"
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def workload(python: str, env: dict[str, str], *args: object) -> dict[str, Any]:
    out = subprocess.run(
        [python, str(WORKLOADS), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"workload {args} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def install_mlflow(tmp: Path) -> str:
    venv = tmp / "mlflow-venv"
    uv = [shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"]
    subprocess.run([*uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [*uv, "pip", "install", "-q", "--python", python, f"mlflow=={MLFLOW_VERSION}"], check=True
    )
    return python


def machine() -> dict[str, str]:
    mem = subprocess.run(["free", "-g"], capture_output=True, text=True, check=False).stdout
    return {
        "nproc": str(os.cpu_count()),
        "memory": mem.splitlines()[1].split()[1] + " GiB" if mem else "?",
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--metrics", type=int, default=10_000)
    parser.add_argument("--mlflow-metrics", type=int, default=300)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="modelyard-bench-tracking-"))
    try:
        results = bench(tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = ROOT / "benchmarks" / "results" / "tracking.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nwrote {out}")


def bench(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    print("installing the competitor (mlflow) into its own venv …", flush=True)
    mlflow_python = install_mlflow(tmp)
    my_python = sys.executable
    my_port, ml_port = free_port(), free_port()
    base = {**os.environ, **QUIET}
    base.pop("MODELYARD_TOKEN", None)
    my_env = {
        **base,
        "MODELYARD_HOME": str(tmp / "my-home"),
        "MODELYARD_TRACKING_URI": f"http://127.0.0.1:{my_port}",
    }
    ml_env = {**base, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ml_port}"}
    my_cmd = [my_python, "-m", "modelyard", "server", "--port", str(my_port)]
    ml_cmd = [
        str(Path(mlflow_python).parent / "mlflow"),
        "server",
        "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
        "--artifacts-destination", str(tmp / "mlartifacts"),
        "--host", "127.0.0.1", "--port", str(ml_port), "--workers", "1",
    ]  # fmt: skip
    with (
        process(my_cmd, my_env, tmp / "modelyard.log"),
        process(ml_cmd, ml_env, tmp / "mlflow.log"),
    ):
        wait_http(f"http://127.0.0.1:{my_port}/health")
        wait_http(f"http://127.0.0.1:{ml_port}/health")
        token = json.loads((tmp / "my-home" / "credentials").read_text())["token"]
        ml_on_my_env = {
            **base,
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{my_port}",
            "MLFLOW_TRACKING_TOKEN": token,
        }
        mlflow_compat = (
            httpx.get(
                f"http://127.0.0.1:{my_port}/api/2.0/mlflow/experiments/get-by-name",
                params={"experiment_name": "Default"},
                headers={"authorization": f"Bearer {token}"},
            ).status_code
            == 200
        )
        rounds: dict[str, list[dict[str, Any]]] = {
            "modelyard_sdk": [], "mlflow_on_mlflow": [], "mlflow_on_modelyard": [], "floor": [],
        }  # fmt: skip
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}: metric logging", flush=True)
            rounds["modelyard_sdk"].append(
                workload(my_python, my_env, "modelyard-sdk", args.metrics)
            )
            rounds["mlflow_on_mlflow"].append(
                workload(mlflow_python, ml_env, "mlflow-fluent", args.mlflow_metrics)
            )
            if mlflow_compat:
                rounds["mlflow_on_modelyard"].append(
                    workload(mlflow_python, ml_on_my_env, "mlflow-fluent", args.mlflow_metrics)
                )
            rounds["floor"].append(workload(my_python, my_env, "sqlite-floor", args.metrics))
        print(f"seeding {args.runs} runs x 10 params x 10 metrics in each", flush=True)
        my_seed = workload(my_python, my_env, "modelyard-seed", args.runs)
        ml_seed = workload(mlflow_python, ml_env, "mlflow-seed", args.runs)
        search: dict[str, list[dict[str, Any]]] = {"modelyard": [], "mlflow": []}
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}: search", flush=True)
            search["modelyard"].append(
                workload(
                    my_python, my_env, "modelyard-search", args.queries, my_seed["experiment_id"]
                )
            )
            search["mlflow"].append(
                workload(
                    mlflow_python, ml_env, "mlflow-search", args.queries, ml_seed["experiment_id"]
                )
            )
    return summarize(args, rounds, search, my_seed, ml_seed, mlflow_compat)


def med(rows: list[dict[str, Any]], key: str) -> float | None:
    return statistics.median(r[key] for r in rows) if rows else None


def summarize(
    args: argparse.Namespace,
    rounds: dict[str, list[dict[str, Any]]],
    search: dict[str, list[dict[str, Any]]],
    my_seed: dict[str, Any],
    ml_seed: dict[str, Any],
    mlflow_compat: bool,
) -> dict[str, Any]:
    my_ms = med(rounds["modelyard_sdk"], "per_metric_ms")
    ml_ms = med(rounds["mlflow_on_mlflow"], "per_metric_ms")
    compat_ms = med(rounds["mlflow_on_modelyard"], "per_metric_ms")
    floor_ms = med(rounds["floor"], "per_metric_ms")
    blocked = med(rounds["modelyard_sdk"], "blocked_s")
    total = med(rounds["modelyard_sdk"], "total_s")
    my_search, ml_search = med(search["modelyard"], "p50_ms"), med(search["mlflow"], "p50_ms")
    if not (my_ms and ml_ms and floor_ms and total and my_search and ml_search):
        raise RuntimeError("a workload produced no measurement")
    assert blocked is not None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": {"mlflow": MLFLOW_VERSION, "modelyard": "0.1.0"},
        "command": "python benchmarks/tracking/run.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "rounds": args.rounds,
        "metric_logging": {
            "modelyard_sdk_ms_per_metric": my_ms,
            "mlflow_ms_per_metric": ml_ms,
            "speedup_vs_mlflow": ml_ms / my_ms,
            "training_loop_blocked_fraction": blocked / total,
            "mlflow_client_on_modelyard_ms_per_metric": compat_ms,
            "mlflow_client_modelyard_vs_mlflow": (compat_ms / ml_ms) if compat_ms else None,
            "sqlite_floor_ms_per_metric": floor_ms,
            "modelyard_vs_floor": my_ms / floor_ms,
            "n_modelyard": args.metrics,
            "n_mlflow": args.mlflow_metrics,
        },
        "search": {
            "runs": args.runs,
            "filter": "metrics.m0 > 0.5 and params.p1 = 'v1'",
            "order_by": "metrics.m1 DESC",
            "modelyard_p50_ms": my_search,
            "mlflow_p50_ms": ml_search,
            "speedup_vs_mlflow": ml_search / my_search,
            "seed_s": {"modelyard": my_seed["seed_s"], "mlflow": ml_seed["seed_s"]},
        },
        "raw": {"logging": rounds, "search": search},
    }


def print_table(r: dict[str, Any]) -> None:
    m, s = r["metric_logging"], r["search"]
    rows = [
        (
            "log_metric, modelyard SDK (ms/metric, durable)",
            f"{m['modelyard_sdk_ms_per_metric']:.4f}",
        ),
        ("log_metric, mlflow → mlflow server", f"{m['mlflow_ms_per_metric']:.2f}"),
        ("  speed-up", f"{m['speedup_vs_mlflow']:.0f}x"),
        ("  training loop blocked", f"{m['training_loop_blocked_fraction'] * 100:.2f} %"),
        (
            "log_metric, mlflow → modelyard",
            f"{m['mlflow_client_on_modelyard_ms_per_metric'] or '-'}",
        ),
        ("SQLite floor (one transaction)", f"{m['sqlite_floor_ms_per_metric']:.5f}"),
        (f"search_runs p50 over {s['runs']} runs, modelyard (ms)", f"{s['modelyard_p50_ms']:.1f}"),
        ("search_runs p50, mlflow (ms)", f"{s['mlflow_p50_ms']:.1f}"),
        ("  speed-up", f"{s['speedup_vs_mlflow']:.1f}x"),
    ]
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"{a.ljust(width)}  {b}")


if __name__ == "__main__":
    main()
