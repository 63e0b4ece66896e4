"""Drift benchmark: modelyard's drift engine vs Evidently's DataDriftPreset, same data.

    .venv/bin/python benchmarks/monitor/drift.py [--rows 1000000] [--ref-rows 1000000]
        [--rounds 3] [--tmp /tmp]

Workload: 20 columns (14 numeric: 13 float64 and one wide-range int64; 6 categorical: 4
string columns and 2 small-range int64 columns) with no drift, small drift (below and
above the default thresholds) and large drift, and missing values in 3 columns.
Reference and current are generated once (seeded) and written to Parquet in the
temporary folder; every measurement is a fresh process that reads them first, outside
the timing: modelyard reads pyarrow Tables (its native input), Evidently pandas
DataFrames (its only input). Timed: for Evidently, ``Report([DataDriftPreset()]).run``
(building its datasets, inferring column types, all tests); for modelyard, *cold* =
the first ``compute_drift(reference, current)`` of the process (sorts and counts both
sides), *prepare* = ``prepare_reference(reference)`` and *warm* = ``compute_drift`` with
that prepared reference (median of 3 calls), then ``compute_drift`` from pandas DataFrames
(unprepared, in the same process after those, so not a first call). Evidently
is installed by this script into its own venv under the temporary folder (uv), with
``pandas<3`` (Evidently 0.7 imports a helper that pandas 3 removed). modelyard and
Evidently alternate (A B A B …); the table shows medians over ``--rounds``. The per-column
verdicts of both are compared (goal: at least 95 % agree).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261126
WARM_CALLS = 3
# 1-minute load average before and after the timed rounds: this 2-core VM is shared.
LOAD: dict[str, float] = {}
# Evidently's display names of its tests, to ours.
EVIDENTLY_TESTS = {
    "K-S p_value": "ks",
    "Wasserstein distance (normed)": "wasserstein",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
}
# What each generated column is meant to show: (kind, drift), for the table.
DESIGN = {
    "n_same_0": ("numeric", "none"),
    "n_same_1": ("numeric", "none"),
    "n_same_2": ("numeric", "none"),
    "n_same_3": ("numeric", "none"),
    "n_lognormal": ("numeric", "none"),
    "n_missing": ("numeric", "none (5 % / 8 % missing)"),
    "n_uniform": ("numeric", "none (2 % missing)"),
    "n_int_wide": ("numeric", "small (shift 0.05 sd), int64"),
    "n_small_below": ("numeric", "small (shift 0.05 sd)"),
    "n_small_above": ("numeric", "small (shift 0.15 sd)"),
    "n_scale": ("numeric", "large (sd x1.3)"),
    "n_large": ("numeric", "large (shift 2 sd)"),
    "n_few_same": ("numeric", "none (3 values)"),
    "n_few_drift": ("numeric", "large (3 values)"),
    "c_same": ("categorical", "none (8 strings, 1 % missing)"),
    "c_small": ("categorical", "small (5 strings)"),
    "c_large": ("categorical", "large (new category)"),
    "c_binary": ("categorical", "small (yes/no 50/50 -> 48/52)"),
    "k_same": ("categorical", "none (int64, 6 values)"),
    "k_drift": ("categorical", "large (int64, 8 values)"),
}


# --- the data -----------------------------------------------------------------------------


def generate(n: int, seed: int, current: bool) -> Any:
    """One side of the workload as a pyarrow Table (current: ``current=True``)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    d = 1.0 if current else 0.0

    def normal(loc: float, scale: float) -> Any:
        return rng.normal(loc, scale, n)

    def with_missing(x: Any, share: float) -> Any:
        x[rng.random(n) < share] = np.nan
        return x

    def strings(names: list[str], p: list[float], missing: float = 0.0) -> Any:
        idx = rng.choice(len(names), n, p=np.asarray(p) / sum(p))
        mask = rng.random(n) < missing if missing else None
        dictionary = pa.array(names)
        arr = pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32), mask=mask), dictionary)
        return arr.cast(pa.string())

    cols: dict[str, Any] = {f"n_same_{i}": normal(0, 1) for i in range(4)}
    cols["n_lognormal"] = rng.lognormal(0, 0.7, n)
    cols["n_missing"] = with_missing(normal(5, 2), 0.08 if current else 0.05)
    cols["n_uniform"] = with_missing(rng.uniform(0, 10, n), 0.02)
    cols["n_int_wide"] = rng.integers(0, 1000, n) + int(15 * d)  # sd 289: shift 0.05 sd
    cols["n_small_below"] = normal(0.05 * d, 1)
    cols["n_small_above"] = normal(10 + 0.15 * 3 * d, 3)
    cols["n_scale"] = normal(0, 1 + 0.3 * d)
    cols["n_large"] = normal(2 * d, 1)
    few = np.array([0.0, 0.5, 1.0])
    cols["n_few_same"] = rng.choice(few, n, p=[0.5, 0.3, 0.2])
    cols["n_few_drift"] = rng.choice(few, n, p=[0.2, 0.3, 0.5] if current else [0.5, 0.3, 0.2])
    eight = ["amber", "blue", "coral", "denim", "ebony", "fern", "gold", "hazel"]
    cols["c_same"] = strings(eight, [8, 7, 6, 5, 4, 3, 2, 1], missing=0.01)
    five = ["north", "south", "east", "west", "center"]
    cols["c_small"] = strings(five, [27, 26, 21, 16, 10] if current else [30, 25, 20, 15, 10])
    cols["c_large"] = strings(
        [*five, "offshore"], [10, 10, 30, 30, 10, 10] if current else [30, 25, 20, 15, 10, 0]
    )
    cols["c_binary"] = strings(["no", "yes"], [48, 52] if current else [50, 50])
    cols["k_same"] = rng.choice(6, n, p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1]).astype(np.int64)
    k = [0.05, 0.05, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2] if current else [0.2, 0.2, 0.2] + [0.08] * 5
    cols["k_drift"] = rng.choice(8, n, p=k).astype(np.int64)
    assert list(cols) == list(DESIGN)
    return pa.table(cols)


def write_data(tmp: Path, rows: int, ref_rows: int) -> tuple[Path, Path]:
    import pyarrow.parquet as pq

    ref, cur = tmp / "reference.parquet", tmp / "current.parquet"
    pq.write_table(generate(ref_rows, SEED, current=False), ref)
    pq.write_table(generate(rows, SEED + 1, current=True), cur)
    return ref, cur


# --- workers: one fresh process per measurement ---------------------------------------------


def worker_modelyard(ref_path: str, cur_path: str) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "src"))
    import pyarrow.parquet as pq

    from modelyard.monitor._drift import compute_drift, prepare_reference

    ref, cur = pq.read_table(ref_path), pq.read_table(cur_path)
    start = time.perf_counter()
    report = compute_drift(ref, cur)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    prepared = prepare_reference(ref)
    prepare = time.perf_counter() - start
    warm = []
    for _ in range(WARM_CALLS):
        start = time.perf_counter()
        again = compute_drift(prepared, cur)
        warm.append(time.perf_counter() - start)
    assert again == report
    ref_df, cur_df = ref.to_pandas(), cur.to_pandas()
    start = time.perf_counter()
    from_pandas = compute_drift(ref_df, cur_df)
    pandas_cold = time.perf_counter() - start
    assert from_pandas == report
    return {
        "cold_s": cold,
        "prepare_s": prepare,
        "warm_s": statistics.median(warm),
        "pandas_cold_s": pandas_cold,
        "dataset_drift": report.dataset_drift,
        "drift_share": report.drift_share,
        "columns": {
            f.column: {"kind": f.kind, "test": f.test, "score": f.statistic, "drifted": f.drifted}
            for f in report.features
        },
    }


def worker_evidently(ref_path: str, cur_path: str) -> dict[str, Any]:
    import evidently  # type: ignore[import-not-found]  # only in its own venv
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset  # type: ignore[import-not-found]

    ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        current_data=cur, reference_data=ref
    )
    seconds = time.perf_counter() - start
    doc = snapshot.dict()
    columns: dict[str, dict[str, Any]] = {}
    share = float("nan")
    for metric in doc["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            columns[config["column"]] = {
                "test": EVIDENTLY_TESTS.get(config["method"], config["method"]),
                "score": float(metric["value"]),
                "threshold": config["threshold"],
            }
        elif config["type"].endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    for test in doc["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith(":ValueDrift"):
            columns[params["column"]]["drifted"] = test["status"] == "FAIL"
    return {
        "seconds": seconds,
        "version": evidently.__version__,
        "pandas": pd.__version__,
        "drift_share": share,
        "dataset_drift": share >= 0.5,
        "columns": columns,
    }


def run_worker(python: str, which: str, ref: Path, cur: Path, env: dict[str, str]) -> Any:
    out = subprocess.run(
        [python, __file__, "--worker", which, str(ref), str(cur)],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"{which} worker failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the benchmark --------------------------------------------------------------------------


def install_evidently(tmp: Path) -> str:
    venv = tmp / "evidently-venv"
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "install", "-q", "--compile-bytecode",
         "--python", str(venv / "bin" / "python"), "evidently", "pandas<3"], check=True,
    )  # fmt: skip
    return str(venv / "bin" / "python")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000, help="current rows")
    parser.add_argument("--ref-rows", type=int, default=1_000_000, help="reference rows")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tmp", default=tempfile.gettempdir())
    parser.add_argument(
        "--worker", nargs=3, metavar=("WHICH", "REF", "CUR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        which, ref, cur = args.worker
        fn = worker_modelyard if which == "modelyard" else worker_evidently
        print(json.dumps(fn(ref, cur)))
        return
    tmp = Path(tempfile.mkdtemp(prefix="modelyard-bench-drift-", dir=args.tmp))
    try:
        run(tmp, args.rows, args.ref_rows, args.rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path, rows: int, ref_rows: int, rounds: int) -> None:
    print("installing the competitor (evidently) into its own venv …", flush=True)
    ev_python = install_evidently(tmp)
    print(f"writing {ref_rows:,} reference and {rows:,} current rows x 20 columns …", flush=True)
    ref, cur = write_data(tmp, rows, ref_rows)
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    LOAD["before"] = os.getloadavg()[0]
    my_runs: list[dict[str, Any]] = []
    ev_runs: list[dict[str, Any]] = []
    for r in range(rounds):
        my_runs.append(run_worker(sys.executable, "modelyard", ref, cur, env))
        ev_runs.append(run_worker(ev_python, "evidently", ref, cur, env))
        print(f"  round {r + 1}: modelyard cold {my_runs[-1]['cold_s']:.2f}s "
              f"warm {my_runs[-1]['warm_s']:.2f}s, evidently {ev_runs[-1]['seconds']:.1f}s",
              flush=True)  # fmt: skip
    LOAD["after"] = os.getloadavg()[0]
    report(my_runs, ev_runs, rows, ref_rows, rounds)


def report(
    my_runs: list[dict[str, Any]], ev_runs: list[dict[str, Any]], rows: int, ref_rows: int,
    rounds: int,
) -> None:  # fmt: skip
    med = statistics.median
    cold, warm = med(r["cold_s"] for r in my_runs), med(r["warm_s"] for r in my_runs)
    prepare, pandas_cold = (
        med(r["prepare_s"] for r in my_runs),
        med(r["pandas_cold_s"] for r in my_runs),
    )
    ev = med(r["seconds"] for r in ev_runs)
    print(f"\n{rows:,} current x {ref_rows:,} reference rows, 20 columns, medians of {rounds}\n")
    print("| measurement | seconds | Evidently / this |")
    print("|---|---|---|")
    for label, s in [
        ("Evidently DataDriftPreset (pandas)", ev),
        ("modelyard cold: compute_drift(reference, current) (Arrow)", cold),
        ("modelyard from pandas DataFrames, unprepared (after the above)", pandas_cold),
        ("modelyard prepare_reference(reference)", prepare),
        ("modelyard warm: compute_drift(prepared, current)", warm),
    ]:
        print(f"| {label} | {s:.3f} | {ev / s:.1f}x |")
    mine, theirs = my_runs[0]["columns"], ev_runs[0]["columns"]
    print("\n| column | kind | designed drift | test (ours / Evidently) | score (ours) | "
          "score (Evidently) | drifted (ours / Evidently) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    per_column = []
    for name, (_, design) in DESIGN.items():
        m, e = mine[name], theirs.get(name, {})
        agree = m["drifted"] == e.get("drifted")
        rel = abs(m["score"] - e["score"]) / max(abs(e["score"]), 1e-300) if "score" in e else None
        per_column.append({"column": name, "design": design, "modelyard": m, "evidently": e,
                           "agree": agree, "score_rel_diff": rel})  # fmt: skip
        print(f"| {name} | {m['kind']} | {design} | {m['test']} / {e.get('test')} | "
              f"{m['score']:.6g} | {e.get('score', float('nan')):.6g} | "
              f"{m['drifted']} / {e.get('drifted')} |")  # fmt: skip
    agreed = sum(c["agree"] for c in per_column)
    disagree = [c["column"] for c in per_column if not c["agree"]]
    rels = [c["score_rel_diff"] for c in per_column if c["score_rel_diff"] is not None]
    print(f"\nverdicts agree on {agreed}/{len(per_column)} columns "
          f"({agreed / len(per_column):.0%}); disagree: {disagree or 'none'}; "
          f"largest relative score difference {max(rels):.2e}")  # fmt: skip
    print(f"dataset drift: modelyard {my_runs[0]['dataset_drift']} "
          f"(share {my_runs[0]['drift_share']:.2f}), Evidently {ev_runs[0]['dataset_drift']} "
          f"(share {ev_runs[0]['drift_share']:.2f})")  # fmt: skip
    print(f"cold {cold:.2f} s (goal < 2 s): {'met' if cold < 2 else 'NOT met'}; "
          f"Evidently / cold {ev / cold:.1f}x (goal >= 10x): "
          f"{'met' if ev / cold >= 10 else 'NOT met'}")  # fmt: skip
    import numpy as np
    import pyarrow as pa

    out = ROOT / "benchmarks" / "results" / "monitor_drift.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_average_1min": LOAD,
                    "openblas_env": {k: os.environ.get(k) for k in
                                     ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}},
        "versions": {"evidently": ev_runs[0]["version"], "evidently_pandas": ev_runs[0]["pandas"],
                     "numpy": np.__version__, "pyarrow": pa.__version__},
        "workload": {"current_rows": rows, "reference_rows": ref_rows, "columns": 20,
                     "numeric": 14, "categorical": 6, "seed": SEED},
        "rounds": rounds,
        "median_s": {"evidently": ev, "modelyard_cold": cold, "modelyard_cold_pandas": pandas_cold,
                     "modelyard_prepare": prepare, "modelyard_warm": warm},
        "speedup_vs_evidently": {"cold": ev / cold, "warm": ev / warm,
                                 "cold_pandas": ev / pandas_cold},
        "goals": {"cold_under_2s": cold < 2, "at_least_10x": ev / cold >= 10,
                  "agreement_at_least_95pct": agreed / len(per_column) >= 0.95},
        "agreement": {"agreed": agreed, "columns": len(per_column), "disagree": disagree,
                      "max_score_rel_diff": max(rels)},
        "dataset_drift": {"modelyard": my_runs[0]["dataset_drift"],
                          "modelyard_share": my_runs[0]["drift_share"],
                          "evidently": ev_runs[0]["dataset_drift"],
                          "evidently_share": ev_runs[0]["drift_share"]},
        "per_column": per_column,
        "raw": {"modelyard": [{k: v for k, v in r.items() if k != "columns"} for r in my_runs],
                "evidently_s": [r["seconds"] for r in ev_runs]},
    }, indent=2))  # fmt: skip
    print(f"evidently {ev_runs[0]['version']}; wrote {out}")


if __name__ == "__main__":
    main()
