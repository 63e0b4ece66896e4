"""Prediction-log overhead: ``modelyard serve`` with and without ``--log-predictions``.

The serving benchmark's LogisticRegression (``make_classification(n_samples=20000,
n_features=20, random_state=0)``), single-row JSON POSTs to ``/invocations`` with
``wrk``, one system at a time, alternating (off, default budget, unlimited budget)
``--rounds`` times; the table shows medians and the ratio to logging off.

* ``off``: no prediction log;
* ``default``: 100 % of requests up to the default byte budget (256 KiB/s per process;
  beyond it requests are dropped from the log, counted, never delayed);
* ``unlimited``: every request logged (``--log-max-bytes-per-s 1e12``), the worst case.

The issue's target: logging slows the request path by at most 5 %. Besides req/s (which
on this shared VM swings by 10-30 % between runs of the same code) the table gives the
serving process's CPU time per request (user + system, all its threads, from /proc): the
server is CPU-bound, so that is the capacity logging costs, and it is far steadier.

Run: ``.venv/bin/python benchmarks/monitor/logging_overhead.py --duration 20 --rounds 3``.
Writes ``benchmarks/results/monitor_logging.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "serving"))
from run import modelyard_launch, start, stop, wrk  # noqa: E402

ROOT = HERE.parent.parent
MODES = {
    "off": [],
    "default": ["--log-predictions", "{spool}"],
    "unlimited": ["--log-predictions", "{spool}", "--log-max-bytes-per-s", "1000000000000"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per level")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--levels", default="1,64", help="concurrency levels")
    parser.add_argument("--modes", default=",".join(MODES), help="off,default,unlimited")
    parser.add_argument("--out", default="monitor_logging.json", help="benchmarks/results/ file")
    args = parser.parse_args()
    levels = [int(c) for c in args.levels.split(",")]
    modes = {m: MODES[m] for m in args.modes.split(",")}
    if "off" not in modes:
        parser.error("--modes must include off (the baseline)")
    work = Path(tempfile.mkdtemp(prefix="modelyard-bench-log-"))
    runs: dict[str, list[dict[str, dict[str, float]]]] = {m: [] for m in modes}
    logged: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    try:
        for round_ in range(args.rounds):
            # Odd rounds run the modes in reverse, so a drift of the machine over a round
            # does not always favour the same mode.
            order = list(modes.items())
            for mode, extra in order if round_ % 2 == 0 else order[::-1]:
                spool = work / f"spool-{mode}-{round_}"
                port = _free_port()
                flags = [a.replace("{spool}", str(spool)) for a in extra]
                launch = modelyard_launch(work, "logreg", port, flags)
                proc, _cold = start(launch, port)
                try:
                    result = {}
                    for c in levels:
                        cpu0 = _cpu_s(proc.pid)
                        result[str(c)] = wrk(launch, port, c, args.duration, work)
                        done = result[str(c)]["rps"] * args.duration
                        result[str(c)]["cpu_us"] = (_cpu_s(proc.pid) - cpu0) / done * 1e6
                        print(
                            f"round {round_ + 1} {mode:9} c={c:3}: "
                            f"{result[str(c)]['rps']:9.0f} req/s, p99 "
                            f"{result[str(c)]['p99_ms']:.2f} ms",
                            flush=True,
                        )
                    logged[mode].append(_log_counts(port))
                finally:
                    stop(proc)
                runs[mode].append(result)
                files = list(spool.glob("*.parquet")) if spool.exists() else []
                logged[mode][-1]["files"] = float(len(files))
                logged[mode][-1]["bytes"] = float(sum(f.stat().st_size for f in files))
                shutil.rmtree(spool, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        mode: {
            str(c): {
                key: statistics.median(r[str(c)][key] for r in mode_runs)
                for key in ("rps", "p50_ms", "p99_ms", "cpu_us")
            }
            for c in levels
        }
        for mode, mode_runs in runs.items()
    }
    doc = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(), "free_g": _free_g()},
        "command": " ".join(["benchmarks/monitor/logging_overhead.py", *sys.argv[1:]]),
        "duration_s": args.duration,
        "rounds": args.rounds,
        "median": summary,
        "paired_cpu_ratio": paired(runs, levels),
        "runs": runs,
        "log": logged,
    }
    out = ROOT / "benchmarks" / "results" / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    print(table(summary, levels, logged))
    for mode, by_level in paired(runs, levels).items():
        for c, stats in by_level.items():
            print(
                f"{mode} vs off, c={c}: CPU/request ratio per round {stats['ratios']}, "
                f"median {stats['median']:.3f}"
            )


def paired(
    runs: dict[str, list[dict[str, dict[str, float]]]], levels: list[int]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Each mode's CPU per request over logging-off's in the same round, and the median."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for mode, mode_runs in runs.items():
        if mode == "off":
            continue
        out[mode] = {}
        for c in levels:
            ratios = [
                round(r[str(c)]["cpu_us"] / o[str(c)]["cpu_us"], 4)
                for r, o in zip(mode_runs, runs["off"], strict=True)
            ]
            out[mode][str(c)] = {"ratios": ratios, "median": statistics.median(ratios)}
    return out


def _log_counts(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    counts = {}
    for line in text.splitlines():
        if line.startswith("modelyard_prediction_log_requests_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            counts[outcome] = float(line.rsplit(" ", 1)[1])
    return counts


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    from modelyard.serving._demo import free_port

    return free_port()


def _free_g() -> str:
    return subprocess.run(["free", "-g"], capture_output=True, text=True, check=False).stdout


def table(
    summary: dict[str, dict[str, dict[str, float]]],
    levels: list[int],
    logged: dict[str, list[dict[str, float]]],
) -> str:
    lines = [
        "| logging | "
        + " | ".join(
            f"c={c} req/s (vs off) | c={c} CPU µs/req (vs off) | c={c} p99 ms" for c in levels
        )
        + " | logged / dropped (last round) |",
        "|---|" + "---|---|---|" * len(levels) + "---|",
    ]
    for mode, by_level in summary.items():
        cells = []
        for c in levels:
            v = by_level[str(c)]
            base = summary["off"][str(c)]["rps"]
            cpu_base = summary["off"][str(c)]["cpu_us"]
            cells.append(
                f"{v['rps']:,.0f} ({v['rps'] / base:.3f}) | {v['cpu_us']:.1f} "
                f"({v['cpu_us'] / cpu_base:.3f}) | {v['p99_ms']:.2f}"
            )
        last = logged[mode][-1] if logged[mode] else {}
        counts = f"{last.get('logged', 0):,.0f} / {last.get('dropped', 0):,.0f}" if last else "-"
        lines.append(f"| {mode} | " + " | ".join(cells) + f" | {counts} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
