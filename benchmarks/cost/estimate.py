"""Cost estimator worked examples: ``modelyard cost estimate`` on the shared traces.

Run:  .venv/bin/python benchmarks/cost/estimate.py [--traces DIR] [--rounds 3]
          [--plots DIR] [--out FILE] [--only NAME ...]

Each scenario is the exact command documented in ``docs/cost-estimate.md``, run
``--rounds`` times as a fresh process (``python -m modelyard cost estimate … --json F``);
the table shows each option's numbers (deterministic: identical in every round) and the
median wall-clock seconds of the whole command (start-up, trace loading, every replay,
the plot). Writes ``benchmarks/results/cost_estimate.json``; with ``--plots DIR`` the
last round's PNG of each scenario is kept there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
AZURE = "azure_llm_conv_2023.csv"
ALIBABA = "alibaba_genai_lora_2024.csv"
AZURE_ARGS = [
    "--time-column",
    "TIMESTAMP",
    "--service-time-ms",
    "40",
    "--memory-gb",
    "2",
    "--cpu",
    "1",
    "--options",
    "provisioned:2,autoscaled:default,serverless,spot",
]
ALIBABA_ARGS = [
    "--time-column",
    "gmt_create",
    "--service-time-column",
    "exec_time_seconds",
    "--cpu",
    "4",
    "--memory-gb",
    "16",
    "--gpu",
    "1",
    "--target-concurrency",
    "1",
    "--slo-wait-ms",
    "5000",
    "--cold-start-s",
    "2",
    "--serverless-cold-start-s",
    "2",
]


@dataclass(frozen=True)
class Scenario:
    name: str
    trace: str
    args: list[str]
    plot: bool = True


SCENARIOS = [
    Scenario("azure", AZURE, AZURE_ARGS),
    Scenario("azure-x10", AZURE, [*AZURE_ARGS, "--time-scale", "10"]),
    Scenario(
        "alibaba",
        ALIBABA,
        [
            *ALIBABA_ARGS,
            "--options",
            "provisioned:4,provisioned:auto,autoscaled:default,serverless,spot",
        ],
    ),
    Scenario(
        "alibaba-limit-300s",
        ALIBABA,
        [*ALIBABA_ARGS, "--options", "serverless", "--max-execution-s", "300"],
        plot=False,
    ),
    Scenario(
        "alibaba-limit-60s",
        ALIBABA,
        [*ALIBABA_ARGS, "--options", "serverless", "--max-execution-s", "60"],
        plot=False,
    ),
]


def command(scenario: Scenario, traces: Path, json_out: Path, plot: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "modelyard", "cost", "estimate", "--trace",
           str(traces / scenario.trace), *scenario.args, "--json", str(json_out)]  # fmt: skip
    if plot is not None:
        cmd += ["--plot", str(plot)]
    return cmd


def shown(scenario: Scenario) -> str:
    """The command as the docs write it."""
    plot = [f"--plot cost-{scenario.name}.png"] if scenario.plot else []
    return " ".join(
        ["modelyard cost estimate --trace", f"/work/shared/traces/{scenario.trace}",
         *map(shlex.quote, scenario.args), *plot]
    )  # fmt: skip


def run(scenario: Scenario, traces: Path, rounds: int, plots: Path | None) -> dict[str, Any]:
    seconds: list[float] = []
    document: dict[str, Any] = {}
    env = {**os.environ, "NO_COLOR": "1", "MODELYARD_PRICES": ""}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            out = Path(tmp) / "estimate.json"
            plot = None
            if scenario.plot:
                last = round_ == rounds - 1 and plots is not None
                plot = (plots if last and plots else Path(tmp)) / f"cost-{scenario.name}.png"
            started = time.perf_counter()
            done = subprocess.run(command(scenario, traces, out, plot), check=True, env=env,
                                  cwd=ROOT, capture_output=True, text=True)  # fmt: skip
            seconds.append(time.perf_counter() - started)
            document = json.loads(out.read_text())
    return {"command": shown(scenario), "seconds": seconds, "terminal": done.stdout,
            "median_s": statistics.median(seconds), "estimate": document}  # fmt: skip


def table(name: str, result: dict[str, Any]) -> str:
    estimate = result["estimate"]
    cur = estimate["currency"]
    lines = [
        f"#### {name}: {estimate['trace']['requests']:,} requests over "
        f"{estimate['trace']['duration_s']:,.0f} s, median {result['median_s']:.1f} s",
        "",
        f"| option | cost {cur} | {cur}/1k req | SLO miss % | p99 ms | cold starts | "
        "failures | max inst. | replica-h | GB-s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for option, row in estimate["options"].items():
        label = f"{option} ({row['policy']})" if option.endswith(":auto") else option
        kinds = [(row["throttled"], "throttled"), (row["timed_out"], "timed out"),
                 (row["dropped"], "dropped")]  # fmt: skip
        parts = ", ".join(f"{n:,} {what}" for n, what in kinds if n)
        failures = f"{row['failures']:,} ({parts})" if parts else "0"
        hours = row["replica_hours"]
        gib_s = row["gib_seconds"]
        lines.append(
            f"| {label} | {row['cost']:,.4g} | {row['cost_per_1k']:.4g} | "
            f"{row['slo_miss_pct']:.2f} | {row['p99_ms']:,} | {row['cold_starts']:,} | "
            f"{failures} | {row['max_instances']} | "
            f"{'-' if hours is None else f'{hours:,.2f}'} | "
            f"{'-' if gib_s is None else f'{gib_s:,.0f}'} |"
        )
    lines += ["", f"Recommendation: {estimate['recommendation']['reason']}", ""]
    lines += [f"- note: {note}" for note in estimate["notes"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=ROOT.parent / "shared" / "traces")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plots", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/cost_estimate.json")
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    if args.plots is not None:
        args.plots.mkdir(parents=True, exist_ok=True)
    machine = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
    }
    results: dict[str, Any] = {"machine": machine, "scenarios": {}}
    for scenario in SCENARIOS:
        if args.only and scenario.name not in args.only:
            continue
        result = run(scenario, args.traces, args.rounds, args.plots)
        results["scenarios"][scenario.name] = result
        print(f"$ {result['command']}\n")
        print(table(scenario.name, result))
        print("seconds per run:", ", ".join(f"{s:.2f}" for s in result["seconds"]), "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
