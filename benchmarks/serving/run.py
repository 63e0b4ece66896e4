"""Serving benchmark: modelyard serve vs mlflow models serve vs BentoML vs the HTTP floor.

Workload (BENCHMARKS.md): LogisticRegression and RandomForestClassifier(100) on
``make_classification(n_samples=20000, n_features=20, random_state=0)``; single-row JSON
POSTs with ``wrk`` (one thread, a Lua POST script) at each concurrency; cold start =
process launch → first successful prediction. Systems run one at a time, alternating,
``--rounds`` times; the table shows the median.

Run: ``.venv/bin/python benchmarks/serving/run.py`` (full: ``--duration 20 --rounds 3``).
Writes ``benchmarks/results/serving.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from competitors import (
    COLUMNS,
    ROOT,
    ROW,
    Launch,
    bentoml_launch,
    mlflow_launch,
)

from modelyard.serving._demo import free_port, write_demo_package

PY = str(ROOT / ".venv" / "bin" / "python")


def modelyard_launch(work: Path, kind: str, port: int, extra: list[str]) -> Launch:
    package = work / f"modelyard-{kind}"
    if not package.exists():
        write_demo_package(package, kind)  # type: ignore[arg-type]
    body = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}})
    cmd = [PY, "-m", "modelyard", "serve", str(package), "--port", str(port), *extra]
    name = "modelyard" + ("-nobatch" if "--no-batching" in extra else "")
    return Launch(name, cmd, "/invocations", body, {})


def floor_launch(port: int) -> Launch:
    cmd = [PY, str(Path(__file__).with_name("floor_app.py")), str(port)]
    body = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}})
    return Launch("floor", cmd, "/invocations", body, {})


def start(
    launch: Launch, port: int, timeout_s: float = 120.0
) -> tuple[subprocess.Popen[bytes], float]:
    """Start and wait for the first 200 to the benchmark request; (process, seconds)."""
    url = f"http://127.0.0.1:{port}{launch.url_path}"
    headers = {"content-type": "application/json"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        launch.cmd,
        env={**os.environ, **launch.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tempfile.gettempdir(),
    )
    while time.perf_counter() - t0 < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"{launch.name} exited with {proc.returncode}")
        try:
            r = httpx.post(url, content=launch.body, headers=headers, timeout=5)
            if r.status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    stop(proc)
    raise RuntimeError(f"{launch.name} did not answer within {timeout_s}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wrk(
    launch: Launch, port: int, concurrency: int, duration_s: int, work: Path
) -> dict[str, float]:
    script = work / f"{launch.name}.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{launch.body}]==]\n"
    )
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{duration_s}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{launch.url_path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def python_floor_cold_start() -> float:
    code = (
        "import time,pickle,sys;t=time.perf_counter();import sklearn.linear_model;"
        "print(time.perf_counter()-t)"
    )
    t0 = time.perf_counter()
    subprocess.run([PY, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=20, help="seconds per concurrency level")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument(
        "--systems", default="floor,modelyard,modelyard-nobatch,mlflow,bentoml,bentoml-batch"
    )
    parser.add_argument("--models", default="logreg,forest")
    parser.add_argument("--work-dir", default=None, help="reuse venvs and models between runs")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serving.json"))
    args = parser.parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="modelyard-serving-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    levels = [int(c) for c in args.concurrency.split(",")]
    systems = args.systems.split(",")
    results: dict[str, list[dict[str, object]]] = {}
    for rnd in range(args.rounds):
        for kind in args.models.split(","):
            for system in systems:
                if system == "floor" and kind != args.models.split(",")[0]:
                    continue
                port = free_port()
                launch = _launch(system, work, kind, port)
                proc, cold_s = start(launch, port)
                try:
                    levels_out = {str(c): wrk(launch, port, c, args.duration, work) for c in levels}
                finally:
                    stop(proc)
                key = system if system == "floor" else f"{system}/{kind}"
                results.setdefault(key, []).append({"cold_start_s": cold_s, "levels": levels_out})
                print(
                    f"round {rnd} {key}: cold {cold_s:.2f}s "
                    + " ".join(
                        f"c{c}={v['rps']:.0f}rps/p99 {v['p99_ms']:.1f}ms"
                        for c, v in levels_out.items()
                    ),
                    flush=True,
                )
    summary = {key: _median(runs, levels) for key, runs in results.items()}
    summary["python-import-sklearn"] = {
        "cold_start_s": statistics.median(python_floor_cold_start() for _ in range(3))
    }
    doc = {
        "machine": f"{platform.node()} {os.cpu_count()} CPUs, {platform.platform()}",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "duration_s": args.duration,
        "rounds": args.rounds,
        "summary": summary,
        "raw": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2))
    print(table(summary, levels))


def _launch(system: str, work: Path, kind: str, port: int) -> Launch:
    if system == "floor":
        return floor_launch(port)
    if system == "modelyard":
        return modelyard_launch(work, kind, port, [])
    if system == "modelyard-nobatch":
        return modelyard_launch(work, kind, port, ["--no-batching"])
    if system == "mlflow":
        return mlflow_launch(work, kind, port)
    return bentoml_launch(work, kind, port, batchable=system == "bentoml-batch")


def _median(runs: list[dict[str, object]], levels: list[int]) -> dict[str, object]:
    out: dict[str, object] = {"cold_start_s": statistics.median(r["cold_start_s"] for r in runs)}  # type: ignore[misc]
    for c in levels:
        for metric in ("rps", "p50_ms", "p99_ms", "non_2xx"):
            out[f"c{c}_{metric}"] = statistics.median(r["levels"][str(c)][metric] for r in runs)  # type: ignore[index]
    return out


def table(summary: dict[str, dict[str, object]], levels: list[int]) -> str:
    head = (
        "| system / model | cold start s | "
        + " | ".join(f"c={c} req/s | c={c} p99 ms" for c in levels)
        + " |"
    )
    lines = [head, "|" + "---|" * (2 + 2 * len(levels))]
    for key, row in summary.items():
        cells = [f"{row['cold_start_s']:.2f}"]
        for c in levels:
            if f"c{c}_rps" in row:
                cells += [f"{row[f'c{c}_rps']:.0f}", f"{row[f'c{c}_p99_ms']:.1f}"]
            else:
                cells += ["-", "-"]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
