"""Tuning benchmark: 50 trials of a 1 s objective — Optuna alone vs my.tune local vs Ray.

    .venv/bin/python benchmarks/tuning/run.py [--rounds 3] [--trials 50] [--trial-s 1.0]

Three ways to run the same TPE study with 2 trials at a time, alternating within each
round (Optuna, local, Ray, Optuna, …), each in a fresh process:
- Optuna alone: an in-memory study, ``optimize(n_jobs=2)`` — no tracking, the floor.
- ``my.tune(executor="local", workers=2)``: 2 spawned worker processes, every trial a
  child run on a modelyard server (SQLite + local folder).
- ``my.tune(executor="ray")``: a real 2-node Ray cluster on this machine (1 CPU each).
Per-trial overhead = on each worker, the gap from the end of one objective to the start
of its next (the worker's writes, the driver's ask/tell and child run, the dispatch),
averaged; the objectives stamp their own start and end. Start-up (to the first
objective: process pool or Ray connection, the parent run) and all-busy (every worker
has started its first trial: a Ray worker process starting on the second node) are
reported apart. Writes benchmarks/results/tuning.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORKERS = 2
QUIET = {"RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}


def workload(mode: str, trials: int, trial_s: float, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(HERE / "workload.py"), mode, str(trials), str(trial_s), str(WORKERS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--trial-s", type=float, default=1.0)
    args = parser.parse_args()

    from modelyard.testing.ray_cluster import ray_cluster
    from modelyard.testing.server_process import running_server

    modes = ("optuna", "local", "ray")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    with (
        tempfile.TemporaryDirectory(prefix="modelyard-bench-tune-") as tmp,
        running_server(Path(tmp) / "home") as server,
        ray_cluster(nodes=WORKERS, cpus_per_node=1) as cluster,
    ):
        env = {
            **os.environ,
            **QUIET,
            **server.env(),
            "MODELYARD_TOKEN": server.admin_token,
            "RAY_ADDRESS": cluster.address,
        }
        for round_ in range(args.rounds):
            for mode in modes:
                result = workload(mode, args.trials, args.trial_s, env)
                runs[mode].append(result)
                print(
                    f"round {round_ + 1} {mode:7s} wall {result['wall_s']:.2f} s, start-up "
                    f"{result['startup_s']:.2f} s, all busy {result['all_busy_s']:.2f} s, "
                    f"{result['workers_seen']} workers, overhead "
                    f"{result['overhead_ms_per_trial']:.1f} ms/trial",
                    flush=True,
                )
    summary = {m: {k: statistics.median(r[k] for r in runs[m]) for k in runs[m][0]} for m in modes}
    floor = summary["optuna"]["wall_s"]
    header = ("executor", "wall s", "start-up s", "all busy s", "ms/trial", "vs Optuna")
    print("\n{:8s} {:>8s} {:>10s} {:>10s} {:>9s} {:>9s}".format(*header))
    for m in modes:
        s = summary[m]
        print(
            f"{m:8s} {s['wall_s']:8.2f} {s['startup_s']:10.2f} {s['all_busy_s']:10.2f} "
            f"{s['overhead_ms_per_trial']:9.1f} {s['wall_s'] / floor:8.2f}x"
        )
    out = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join(["benchmarks/tuning/run.py", *sys.argv[1:]]),
        "trials": args.trials,
        "trial_s": args.trial_s,
        "workers": WORKERS,
        "medians": summary,
        "runs": runs,
    }
    dest = ROOT / "benchmarks" / "results" / "tuning.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
