"""Autoscaling benchmark: replay both shared traces at time scales 1 and 10 through every policy.

Run:  .venv/bin/python benchmarks/autoscale/run.py [--traces DIR] [--out FILE]

Prints one table per scenario plus the issue's goals (default <= 1 % SLO misses,
<= 0.8x the replica-seconds of hpa and kpa, <= 1.3x the oracle's), and writes
benchmarks/results/autoscale.json. The simulation is deterministic, so the numbers are
exact; only the wall-clock seconds per simulation vary (median of 3 for the Azure hour).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from modelyard import __version__
from modelyard.autoscale import load_timestamps, parse_service_time
from modelyard.autoscale.experiment import Experiment, service_times
from modelyard.autoscale.registry import build_policy
from modelyard.autoscale.report import Slo, markdown_table, summarize
from modelyard.autoscale.simulator import simulate

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ["default", "kpa", "hpa", "ray", "oracle", "fixed:4"]


@dataclass(frozen=True)
class Scenario:
    name: str
    file: str
    time_column: str
    service_column: str | None
    service_ms: str | None
    target_concurrency: int
    slo: Slo
    time_scale: float
    primary: bool  # counts towards the goals


def scenarios() -> list[Scenario]:
    out = []
    for scale in (1.0, 10.0):
        out.append(
            Scenario(
                "azure",
                "azure_llm_conv_2023.csv",
                "TIMESTAMP",
                None,
                "40",
                4,
                Slo(0.25),
                scale,
                True,
            )
        )
        out.append(
            Scenario(
                "alibaba",
                "alibaba_genai_lora_2024.csv",
                "gmt_create",
                "exec_time_seconds",
                None,
                1,
                Slo(5.0, includes_service=False),
                scale,
                True,
            )
        )
        out.append(
            Scenario(
                "alibaba-strict",
                "alibaba_genai_lora_2024.csv",
                "gmt_create",
                "exec_time_seconds",
                None,
                1,
                Slo(0.25, includes_service=False),
                scale,
                False,
            )
        )
    return out


def run_scenario(sc: Scenario, traces: Path, repeats: int) -> dict[str, object]:
    trace = load_timestamps(
        traces / sc.file, time_column=sc.time_column, service_time_column=sc.service_column
    ).scaled(sc.time_scale)
    model = parse_service_time(sc.service_ms) if sc.service_ms else None
    service = service_times(trace, model, seed=0)
    experiment = Experiment(sc.target_concurrency, 2.0, sc.slo)
    config = experiment.sim_config(service)
    arrival = np.ascontiguousarray(trace.arrival_s)
    rows: dict[str, object] = {}
    timings: dict[str, float] = {}
    summaries = {}
    for name in POLICIES:
        seconds = []
        for _ in range(repeats):
            policy = build_policy(name, experiment.policy_settings())
            start = time.perf_counter()
            result = simulate(policy, arrival, service, config)
            seconds.append(time.perf_counter() - start)
        timings[name] = statistics.median(seconds)
        summaries[name] = summarize(result, experiment.slo, experiment.price_usd_per_replica_hour)
        rows[name] = asdict(summaries[name])
    d, hpa, kpa, oracle = (summaries[k] for k in ("default", "hpa", "kpa", "oracle"))
    goals = {
        "default_slo_violation_pct": d.slo_violation_pct,
        "rs_vs_hpa": round(d.replica_seconds / hpa.replica_seconds, 3),
        "rs_vs_kpa": round(d.replica_seconds / kpa.replica_seconds, 3),
        "rs_vs_oracle": round(d.replica_seconds / oracle.replica_seconds, 3),
        "violations_le_hpa": d.slo_violation_pct <= hpa.slo_violation_pct,
        "violations_le_kpa": d.slo_violation_pct <= kpa.slo_violation_pct,
    }
    goals["met"] = bool(
        d.slo_violation_pct <= 1.0
        and goals["rs_vs_hpa"] <= 0.8
        and goals["rs_vs_kpa"] <= 0.8
        and goals["rs_vs_oracle"] <= 1.3
        and goals["violations_le_hpa"]
        and goals["violations_le_kpa"]
    )
    title = (
        f"### {sc.name}, time scale {sc.time_scale:g}: {trace.requests:,} requests over "
        f"{trace.duration_s:,.0f} s; target concurrency {sc.target_concurrency}, "
        f"SLO {sc.slo.describe()}, service "
        f"{model.describe() if model else 'from the trace'}, cold start 2 s"
    )
    timing_line = ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
    text = "\n".join(
        [
            title,
            "",
            markdown_table(summaries),
            "",
            f"default vs hpa {goals['rs_vs_hpa']}x, vs kpa {goals['rs_vs_kpa']}x, "
            f"vs oracle {goals['rs_vs_oracle']}x replica-seconds; "
            f"goals {'met' if goals['met'] else 'NOT met'}",
            f"simulation seconds per policy: {timing_line}",
            "",
        ]
    )
    print(text, flush=True)
    return {
        "scenario": sc.name,
        "time_scale": sc.time_scale,
        "primary": sc.primary,
        "slo": sc.slo.describe(),
        "target_concurrency": sc.target_concurrency,
        "trace": {"requests": trace.requests, "duration_s": round(trace.duration_s, 3)},
        "policies": rows,
        "sim_seconds": {k: round(v, 3) for k, v in timings.items()},
        "goals": goals,
        "markdown": text,
    }


def machine() -> dict[str, str]:
    def sh(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "?"

    return {
        "nproc": sh("nproc"),
        "free_g": sh("free", "-g"),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "modelyard": __version__,
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=ROOT / ".." / "shared" / "traces")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/autoscale.json")
    parser.add_argument("--only", help="run only scenarios whose name starts with this")
    args = parser.parse_args()
    results = []
    for sc in scenarios():
        if args.only and not sc.name.startswith(args.only):
            continue
        repeats = 3 if sc.name == "azure" and sc.time_scale == 1 else 1
        results.append(run_scenario(sc, args.traces, repeats))
    document = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": ".venv/bin/python benchmarks/autoscale/run.py",
        "machine": machine(),
        "scenarios": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
