"""Deployment benchmark: gateway overhead, scale from zero, load step, faults under load.

Everything runs against a real ``modelyard server`` (gateway, zygote, controller,
replica processes) on this machine, with the serving benchmark's LogisticRegression
(``make_classification(n_samples=20000, n_features=20, random_state=0)``) and
single-row JSON requests to ``/invocations``; load comes from ``wrk``.

1. Gateway overhead: ``modelyard serve`` hit directly vs the same model behind the
   gateway, alternating, ``--rounds`` times: p50 at concurrency 1, req/s at 64. With one
   replica, and with two (``serve --workers 2`` direct).
2. Scale from zero: ``--trials`` cold requests (the deployment at 0 replicas) with the
   breakdown from the controller's events; the same with ``prewarm``.
3. Load step 0 → concurrency 32 for 30 s: replicas over time (sampled every 0.25 s);
   time to the capacity the policy wants; time back to 0 after the load stops.
4. Faults under steady load (concurrency 16, 60 s each): SIGKILL one of two replicas; a
   rolling update; a full canary (10, 50, 100 % at 10 s steps). Failed requests counted.

Run: ``.venv/bin/python benchmarks/deploy/run.py`` (``--quick`` for a short smoke run).
Writes ``benchmarks/results/deploy.json`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))
from competitors import COLUMNS, ROOT, ROW

from modelyard.client import ModelyardClient
from modelyard.serving._demo import free_port, write_demo_package
from modelyard.testing.server_process import ServerProcess, running_server

PY = str(ROOT / ".venv" / "bin" / "python")
BODY = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}})
FAST = {"stable_window_s": 6.0, "panic_window_s": 2.0, "tick_s": 1.0}


def wrk(url: str, concurrency: int, duration_s: float, work: Path) -> dict[str, float]:
    script = work / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{BODY}]==]\n"
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{int(duration_s)}s", "--latency",
         "--timeout", "30s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    def ms(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(total.group(1)) if total else 0,
        "failed": (int(bad.group(1)) if bad else 0)
        + (sum(int(x) for x in sock.groups()) if sock else 0),
    }


def register_model(server: ServerProcess, work: Path) -> ModelyardClient:
    os.environ["MODELYARD_HOME"] = str(server.home)
    os.environ["MODELYARD_TRACKING_URI"] = server.uri
    os.environ.pop("MODELYARD_TOKEN", None)
    import modelyard as my
    from modelyard.tracking import fluent

    fluent._reset_for_tests()
    write_demo_package(work / "logreg", "logreg")  # for `modelyard serve` direct
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(n_samples=20000, n_features=20, random_state=0)
    frame = pd.DataFrame(x, columns=COLUMNS)
    model = LogisticRegression(max_iter=1000).fit(frame, y)
    example = frame[:5]
    with my.start_run():
        for i in range(3):  # versions 1..3: the same model, for rollouts
            my.log_model(model, f"m{i}", input_example=example, registered_model_name="bench")
    return fluent._get().client


def wait(client: ModelyardClient, name: str, check: Callable[[dict[str, Any]], bool],
         timeout_s: float = 120.0) -> dict[str, Any]:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while True:
        dep = client.get_deployment("default", name)
        if check(dep):
            return dep
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: condition not reached: {dep}")
        time.sleep(0.1)


def ready(dep: dict[str, Any], revision: int | None = None) -> list[dict[str, Any]]:
    return [r for r in dep["replicas"] if r["state"] == "ready" and not r["standby"]
            and (revision is None or r["revision"] == revision)]  # fmt: skip


# --- 1. gateway overhead ---------------------------------------------------------------


@contextmanager
def direct_serve(package: Path, workers: int) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [PY, "-m", "modelyard", "serve", str(package), "--port", str(port),
         "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        for _ in range(600):
            try:
                if httpx.post(url, content=BODY, headers={"content-type": "application/json"}
                              ).status_code == 200:  # fmt: skip
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def gateway_overhead(client: ModelyardClient, work: Path, rounds: int, duration_s: float
                     ) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {}
    for replicas in (1, 2):
        name = f"gw{replicas}"
        dep = client.create_deployment("default", name, "models:/bench/1", scaling={
            "min_replicas": replicas, "max_replicas": replicas, "policy": f"fixed:{replicas}",
        })  # fmt: skip
        dep = wait(client, name, lambda d, n=replicas: len(ready(d)) >= n)
        via = f"{dep['endpoint']}invocations"
        runs: dict[str, list[dict[str, float]]] = {"direct": [], "gateway": []}
        with direct_serve(work / "logreg", replicas) as direct:
            for _ in range(rounds):
                for label, url in (("direct", direct), ("gateway", via)):
                    c1 = wrk(url, 1, duration_s, work)
                    c64 = wrk(url, 64, duration_s, work)
                    runs[label].append({"c1_p50_ms": c1["p50_ms"], "c64_rps": c64["rps"],
                                        "c64_p99_ms": c64["p99_ms"],
                                        "failed": c1["failed"] + c64["failed"]})  # fmt: skip
        delete(client, name)
        med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
        med["added_p50_ms"] = med["gateway"]["c1_p50_ms"] - med["direct"]["c1_p50_ms"]
        med["throughput_ratio"] = med["gateway"]["c64_rps"] / med["direct"]["c64_rps"]
        med["rounds"] = runs
        out[f"{replicas}_replica"] = med
    return out


def delete(client: ModelyardClient, name: str) -> None:
    """Delete and wait until its replicas are gone (the global replica cap is shared)."""
    client.delete_deployment("default", name)
    deadline = time.monotonic() + 120
    while any(d["name"] == name for d in client.list_deployments("default")):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} was not deleted within 120 s")
        time.sleep(0.2)


# --- 2. scale from zero ------------------------------------------------------------------


def scale_from_zero(client: ModelyardClient, trials: int, prewarm: bool) -> dict[str, Any]:
    name = "cold-warm" if prewarm else "cold"
    client.create_deployment("default", name, "models:/bench/1", scaling={
        "min_replicas": 0, "max_replicas": 1, "idle_grace_s": 1.0, "prewarm": prewarm, **FAST,
    })  # fmt: skip
    dep = wait(client, name, lambda d: d["revisions"][0]["state"] == "ready")
    url = f"{dep['endpoint']}invocations"
    results = []
    for _ in range(trials):
        dep = wait(
            client,
            name,
            lambda d: (
                not ready(d)
                and (
                    not prewarm
                    or any(r["standby"] and r["state"] == "ready" for r in d["replicas"])
                )
            ),
        )
        last_event = client.deployment_events("default", name, limit=10_000)[-1]["id"]
        time.sleep(0.5)
        t0 = time.time()
        r = httpx.post(url, content=BODY, headers={"content-type": "application/json"},
                       timeout=60)  # fmt: skip
        t1 = time.time()
        assert r.status_code == 200, r.text
        events = client.deployment_events("default", name, after=last_event)
        breakdown: dict[str, float] = {"total_s": t1 - t0}
        for e in events:
            at = e["time_ms"] / 1000 - t0
            if e["kind"] == "scale" and e["data"].get("woken") and "wake_s" not in breakdown:
                breakdown["wake_s"] = at
            if e["kind"] == "replica" and "promoted" in e["message"]:
                breakdown.setdefault("promoted_s", at)
            if (
                e["kind"] == "replica"
                and "starting" in e["message"]
                and "standby" not in (e["message"])
            ):
                breakdown.setdefault("launch_s", at)
            if (
                e["kind"] == "replica"
                and "ready in" in e["message"]
                and not e["data"].get("standby")
            ):
                breakdown.setdefault("ready_s", at)
        results.append(breakdown)
        time.sleep(0.2)
    delete(client, name)
    totals = sorted(r["total_s"] for r in results)
    return {
        "trials": results,
        "p50_s": statistics.median(totals),
        "p95_s": totals[min(len(totals) - 1, round(0.95 * (len(totals) - 1)))],
        "median_breakdown": {
            k: statistics.median(r[k] for r in results if k in r)
            for k in ("wake_s", "launch_s", "promoted_s", "ready_s", "total_s")
            if any(k in r for r in results)
        },
    }


# --- 3. load step ----------------------------------------------------------------------


def load_step(client: ModelyardClient, work: Path, duration_s: float) -> dict[str, Any]:
    name = "step"
    dep = client.create_deployment("default", name, "models:/bench/1", scaling={
        "min_replicas": 0, "max_replicas": 4, "target_concurrency": 4, "idle_grace_s": 10,
    })  # fmt: skip
    wait(client, name, lambda d: d["revisions"][0]["state"] == "ready")
    wait(client, name, lambda d: not d["replicas"], timeout_s=120)
    curve: list[tuple[float, int, int]] = []
    stop = threading.Event()
    t0 = time.time()

    def sample() -> None:
        while not stop.is_set():
            d = client.get_deployment("default", name)
            active = [r for r in d["replicas"] if r["state"] in ("starting", "ready")]
            curve.append((round(time.time() - t0, 2), len(ready(d)), len(active)))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample)
    sampler.start()
    load = wrk(f"{dep['endpoint']}invocations", 32, duration_s, work)
    load_end = time.time() - t0
    deadline = time.time() + 120
    while time.time() < deadline and (not curve or curve[-1][2] > 0 or curve[-1][0] < load_end):
        time.sleep(0.25)
    stop.set()
    sampler.join()
    events = client.deployment_events("default", name, kind="scale", limit=10_000)
    wanted = max((e["data"]["desired"] for e in events), default=0)
    reached = next((t for t, r, _ in curve if r >= wanted), None)
    zero = next((t for t, _, a in curve if t > load_end and a == 0), None)
    delete(client, name)
    return {
        "load": load,
        "policy_wanted": wanted,
        "time_to_wanted_s": reached,
        "load_end_s": round(load_end, 2),
        "back_to_zero_after_load_s": None if zero is None else round(zero - load_end, 2),
        "idle_grace_s": 10,
        "curve": curve,
    }


# --- 4. faults under load ----------------------------------------------------------------


def under_load(client: ModelyardClient, work: Path, name: str, duration_s: float,
               action: Callable[[], None], at_s: float) -> dict[str, float]:  # fmt: skip
    dep = client.get_deployment("default", name)
    timer = threading.Timer(at_s, action)
    timer.start()
    try:
        return wrk(f"{dep['endpoint']}invocations", 16, duration_s, work)
    finally:
        timer.cancel()


def faults(client: ModelyardClient, work: Path, duration_s: float) -> dict[str, Any]:
    name = "faults"
    client.create_deployment("default", name, "models:/bench/1", scaling={
        "min_replicas": 2, "max_replicas": 3, "target_concurrency": 16,
    })  # fmt: skip
    wait(client, name, lambda d: len(ready(d)) >= 2)

    def kill() -> None:
        victim = ready(client.get_deployment("default", name))[0]
        os.kill(victim["pid"], signal.SIGKILL)

    out: dict[str, Any] = {"sigkill": under_load(client, work, name, duration_s, kill, 20)}
    wait(client, name, lambda d: len(ready(d)) >= 2)
    out["rolling"] = under_load(client, work, name, duration_s, lambda: client.update_deployment(
        "default", name, model="models:/bench/2", strategy="rolling"), 10)  # fmt: skip
    dep = wait(client, name, lambda d: d["rollout"]["phase"] == "done")
    out["rolling"]["phase"] = dep["rollout"]["phase"]
    out["canary"] = under_load(client, work, name, duration_s, lambda: client.update_deployment(
        "default", name, model="models:/bench/3", strategy="canary", steps=(10, 50, 100),
        step_interval_s=10), 5)  # fmt: skip
    dep = wait(client, name, lambda d: d["rollout"]["phase"] in ("done", "rolled_back"))
    out["canary"]["phase"] = dep["rollout"]["phase"]
    delete(client, name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--fault-duration", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--only", default="overhead,cold,step,faults")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.trials, args.fault_duration = 1, 3, 3, 20
    parts = set(args.only.split(","))
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "command": " ".join(sys.argv),
    }
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-deploy-") as tmp:
        work = Path(tmp)
        gateway_port = free_port()
        with running_server(work / "home", "--gateway-port", str(gateway_port),
                            env={"MODELYARD_MAX_REPLICAS": "4"}) as server:  # fmt: skip
            client = register_model(server, work)
            if "overhead" in parts:
                results["gateway_overhead"] = gateway_overhead(client, work, args.rounds,
                                                               args.duration)  # fmt: skip
            if "cold" in parts:
                results["scale_from_zero"] = scale_from_zero(client, args.trials, prewarm=False)
                results["scale_from_zero_prewarm"] = scale_from_zero(client, args.trials,
                                                                     prewarm=True)  # fmt: skip
            if "step" in parts:
                results["load_step"] = load_step(client, work, 30.0)
            if "faults" in parts:
                results["faults"] = faults(client, work, args.fault_duration)
    out = ROOT / "benchmarks" / "results" / "deploy.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_tables(results)


def print_tables(r: dict[str, Any]) -> None:
    if "gateway_overhead" in r:
        print("| replicas | direct p50 c=1 (ms) | gateway p50 c=1 (ms) | added p50 (ms) |"
              " direct req/s c=64 | gateway req/s c=64 | gateway / direct |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for key, v in r["gateway_overhead"].items():
            print(f"| {key.split('_')[0]} | {v['direct']['c1_p50_ms']:.2f} | "
                  f"{v['gateway']['c1_p50_ms']:.2f} | {v['added_p50_ms']:.2f} | "
                  f"{v['direct']['c64_rps']:.0f} | {v['gateway']['c64_rps']:.0f} | "
                  f"{v['throughput_ratio']:.0%} |")  # fmt: skip
    for key in ("scale_from_zero", "scale_from_zero_prewarm"):
        if key in r:
            v = r[key]
            b = ", ".join(f"{k} {x:.3f}" for k, x in v["median_breakdown"].items())
            print(f"\n{key}: p50 {v['p50_s']:.3f} s, p95 {v['p95_s']:.3f} s "
                  f"over {len(v['trials'])} trials; median breakdown: {b}")  # fmt: skip
    if "load_step" in r:
        v = r["load_step"]
        print(f"\nload step 0 -> 32: policy wanted {v['policy_wanted']} replicas, reached in "
              f"{v['time_to_wanted_s']} s; back to 0 {v['back_to_zero_after_load_s']} s after "
              f"the load stopped (idle grace {v['idle_grace_s']} s); "
              f"{v['load']['failed']} failed of {v['load']['requests']}")  # fmt: skip
    if "faults" in r:
        print("\n| under concurrency 16 | requests | failed | req/s |")
        print("|---|---|---|---|")
        for key, v in r["faults"].items():
            print(f"| {key} | {v['requests']} | {v['failed']} | {v['rps']:.0f} |")


if __name__ == "__main__":
    main()
