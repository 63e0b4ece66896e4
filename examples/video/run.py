"""The video example: decode -> detect -> encode, each stage its own autoscaled deployment.

Run it from the repository root (about a minute here, most of it starting things):

    python examples/video/run.py                      # starts a throw-away local server
    python examples/video/run.py --frames 600 --concurrency 8
    MODELYARD_TRACKING_URI=http://127.0.0.1:5000 python examples/video/run.py --keep

Without ``MODELYARD_TRACKING_URI`` it starts ``modelyard server`` (with its gateway) on
free ports under a temporary ``MODELYARD_HOME`` (or ``--home``) and stops it at the end,
which stops every replica. With it, it uses that server (and its credentials, as the CLI
does), and deletes the three deployments at the end unless ``--keep``.

What it does:

1. registers the three stage models of ``stages.py`` (pyfunc packages) as
   ``<prefix>-decode``, ``<prefix>-detect`` and ``<prefix>-encode``;
2. deploys each as its own deployment with its own scaling (``STAGES`` below): the slow
   decode stage aims at one frame in flight per replica and may grow to three replicas,
   the detector at four per replica (up to two), the cheap encoder at sixteen (so one);
3. drives ``--frames`` frames through the chain from ``--concurrency`` threads, each
   frame decode -> detect -> encode over HTTP through the gateway, and checks every
   output record (each frame exactly once, its checksum right);
4. prints, per stage, the replicas now and at the peak, its queue at the gateway while
   the frames ran (requests in flight plus held for that deployment, sampled from the
   gateway's ``/-/metrics``: what its autoscaler reads), its scale decisions (the
   deployment's ``scale`` events) and the latency the stage added;
5. ``--summary FILE`` writes all of that as JSON (what the end-to-end test reads).

Exit status: 0 when every frame came out right, 1 when not, 2 on a usage error (a
deployment of that name already exists, a bad option).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script, this is already there
    sys.path.insert(0, str(HERE))

import stages  # noqa: E402

PROJECT = os.environ.get("MODELYARD_PROJECT", "default")
START_TIMEOUT_S = 90.0
READY_TIMEOUT_S = 120.0
STOP_GRACE_S = 45.0
RETRIES = 3


@dataclass(frozen=True)
class Stage:
    """One stage of the chain: its model and how its deployment scales and is sized."""

    key: str
    columns: tuple[str, ...]
    scaling: dict[str, Any]
    runtime: dict[str, Any]


# Fast reactions for a short demo (KPA windows of seconds, not a minute); otherwise the
# defaults of `modelyard deploy create`. Each stage's autoscaler reads only its own
# deployment's queue at the gateway (requests in flight + held for it).
_FAST = {"stable_window_s": 6.0, "panic_window_s": 2.0, "tick_s": 1.0, "idle_grace_s": 60.0}
STAGES = (
    Stage(
        "decode",
        tuple(stages.Decode.columns),
        {"min_replicas": 1, "max_replicas": 3, "target_concurrency": 1.0, **_FAST},
        {"cpu": 1.0, "memory_mb": 512},
    ),
    Stage(
        "detect",
        tuple(stages.Detect.columns),
        {"min_replicas": 1, "max_replicas": 2, "target_concurrency": 4.0, **_FAST},
        {"cpu": 0.5, "memory_mb": 384},
    ),
    Stage(
        "encode",
        tuple(stages.Encode.columns),
        {"min_replicas": 1, "max_replicas": 2, "target_concurrency": 16.0, **_FAST},
        {"cpu": 0.25, "memory_mb": 256},
    ),
)


class UsageError(Exception):
    """Something the user can fix: said in one line, exit status 2."""


# ---- the server --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _healthy(uri: str) -> bool:
    try:
        return httpx.get(f"{uri}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def local_server(home: Path) -> Iterator[str]:
    """``modelyard server`` (API + gateway) under ``home`` on free ports, stopped (with
    its gateway and replicas) when the block exits, however it exits."""
    port, gateway_port = _free_port(), _free_port()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MODELYARD_HOME": str(home), "MODELYARD_MAX_REPLICAS": "8"}
    env.pop("MODELYARD_TOKEN", None)
    env.pop("MODELYARD_TRACKING_URI", None)
    log_path = home / "video-example-server.log"
    command = [sys.executable, "-m", "modelyard", "server", "--port", str(port),
               "--gateway-port", str(gateway_port)]  # fmt: skip
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(uri):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the server did not start; its log ends with:\n{tail}")
            time.sleep(0.1)
        yield uri
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the server drains and stops its replicas and gateway), then SIGKILL of
    its own session if it hangs."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_GRACE_S)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# ---- models and deployments ---------------------------------------------------------------


def register_models(prefix: str) -> dict[str, str]:
    """Log and register the three stage models; their ``models:/`` URIs by stage."""
    import cloudpickle  # type: ignore[import-untyped]

    import modelyard as my

    # Save the stage classes by value: a replica has numpy, pandas and scikit-learn,
    # not this example's directory.
    cloudpickle.register_pickle_by_value(stages)
    models = {
        "decode": stages.Decode(),
        "detect": stages.Detect(stages.train_detector()),
        "encode": stages.Encode(),
    }
    example = stages.examples()
    uris: dict[str, str] = {}
    my.set_experiment(f"{prefix}-example")
    with my.start_run(name=f"{prefix}-stages"):
        for key, model in models.items():
            logged = my.log_model(
                model,
                key,
                input_example=example[key],
                registered_model_name=f"{prefix}-{key}",
                flavor="pyfunc",
            )
            assert logged.version is not None
            uris[key] = f"models:/{prefix}-{key}/{logged.version.version}"
    return uris


def create_deployments(client: Any, prefix: str, uris: dict[str, str]) -> dict[str, str]:
    """One deployment per stage; their endpoints by stage."""
    existing = {d["name"] for d in client.list_deployments(PROJECT)}
    taken = sorted(f"{prefix}-{s.key}" for s in STAGES if f"{prefix}-{s.key}" in existing)
    if taken:
        raise UsageError(
            f"deployment {taken[0]} already exists on this server: delete it "
            f"(modelyard deploy delete {taken[0]} --wait) or pass another --prefix"
        )
    endpoints = {}
    for stage in STAGES:
        made = client.create_deployment(
            PROJECT, f"{prefix}-{stage.key}", uris[stage.key],
            scaling=stage.scaling, runtime=stage.runtime,
        )  # fmt: skip
        endpoints[stage.key] = made["endpoint"]
    return endpoints


def _ready(dep: dict[str, Any]) -> int:
    return sum(1 for r in dep["replicas"] if r["state"] == "ready" and not r["standby"])


def wait_ready(client: Any, prefix: str) -> None:
    """Until every stage has a ready replica (its model loaded and answering)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    for stage in STAGES:
        name = f"{prefix}-{stage.key}"
        while True:
            dep = client.get_deployment(PROJECT, name)
            failed = [r for r in dep["revisions"] if r["state"] == "failed"]
            if failed:
                raise RuntimeError(f"{name}: revision failed: {failed[0]['error']}")
            if _ready(dep) > 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} has no ready replica after {READY_TIMEOUT_S:g} s")
            time.sleep(0.2)


# ---- the traffic ---------------------------------------------------------------------------


@dataclass
class Traffic:
    """What the driver saw: output records by frame, latencies per stage, failures."""

    records: dict[int, list[float]] = field(default_factory=dict)
    duplicates: list[int] = field(default_factory=list)
    latency_ms: dict[str, list[float]] = field(default_factory=dict)
    retries: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _call(
    http: httpx.Client, url: str, columns: tuple[str, ...], row: list[float], seen: Traffic
) -> list[float]:
    body = {"dataframe_split": {"columns": list(columns), "data": [row]}}
    for attempt in range(RETRIES + 1):
        response = http.post(url, json=body)
        if response.status_code == 200:
            prediction: list[float] = response.json()["predictions"][0]
            return prediction
        if response.status_code not in (502, 503, 504) or attempt == RETRIES:
            raise RuntimeError(f"POST {url}: {response.status_code} {response.text[:200]}")
        with seen.lock:
            seen.retries += 1
        time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _worker(frames: queue.Queue[int], urls: dict[str, str], seen: Traffic) -> None:
    with httpx.Client(timeout=60.0) as http:
        while True:
            try:
                frame_id = frames.get_nowait()
            except queue.Empty:
                return
            row: list[float] = [float(frame_id), float(1024 + (frame_id % 7) * 512)]
            try:
                for stage in STAGES:
                    started = time.perf_counter()
                    row = _call(http, urls[stage.key], stage.columns, row, seen)
                    elapsed = (time.perf_counter() - started) * 1000
                    with seen.lock:
                        seen.latency_ms.setdefault(stage.key, []).append(elapsed)
            except (httpx.HTTPError, RuntimeError, KeyError, ValueError) as exc:
                with seen.lock:
                    seen.failures.append(f"frame {frame_id}: {exc}")
                continue
            with seen.lock:
                if int(row[0]) in seen.records:
                    seen.duplicates.append(int(row[0]))
                seen.records[int(row[0])] = row


_GAUGE = re.compile(
    r'^modelyard_gateway_(in_flight|queued)_requests\{deployment="([^"]+)",revision="\d+"\} '
    r"([0-9.e+-]+)$"
)


class QueueWatch:
    """Samples each deployment's queue at the gateway (``/-/metrics``: requests in flight
    at its replicas plus held for it) every ``interval_s`` while the frames run: the
    quantity each stage's autoscaler integrates."""

    def __init__(self, gateway: str, interval_s: float = 0.1) -> None:
        self._url = f"{gateway}/-/metrics"
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.samples: dict[str, list[float]] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> QueueWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(timeout=2.0) as http:
            while not self._stop.wait(self._interval_s):
                try:
                    text = http.get(self._url).text
                except httpx.HTTPError:
                    continue
                now: dict[str, float] = {}
                for line in text.splitlines():
                    match = _GAUGE.match(line)
                    if match is not None:
                        name = match.group(2)
                        now[name] = now.get(name, 0.0) + float(match.group(3))
                for name, value in now.items():
                    self.samples.setdefault(name, []).append(value)


def drive(endpoints: dict[str, str], frames: int, concurrency: int) -> tuple[Traffic, QueueWatch]:
    """Every frame through decode -> detect -> encode, from ``concurrency`` threads,
    watching each stage's queue at the gateway meanwhile."""
    work: queue.Queue[int] = queue.Queue()
    for frame_id in range(frames):
        work.put(frame_id)
    urls = {key: f"{url.rstrip('/')}/invocations" for key, url in endpoints.items()}
    parts = urlsplit(next(iter(endpoints.values())))
    seen = Traffic()
    threads = [
        threading.Thread(target=_worker, args=(work, urls, seen), daemon=True)
        for _ in range(concurrency)
    ]
    with QueueWatch(f"{parts.scheme}://{parts.netloc}") as watch:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return seen, watch


# ---- the report ---------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def summarize(
    client: Any,
    prefix: str,
    frames: int,
    concurrency: int,
    seen: Traffic,
    watch: QueueWatch,
    wall_s: float,
) -> dict[str, Any]:
    """The run as JSON: frames out, and per stage its scaling, replicas and latency."""
    bad = [
        fid
        for fid, (_, label, milli, checksum) in seen.records.items()
        if stages.record_checksum(fid, int(label), int(milli)) != int(checksum)
    ]
    out: dict[str, Any] = {
        "frames": frames,
        "concurrency": concurrency,
        "frames_out": len(seen.records),
        "missing": sorted(set(range(frames)) - set(seen.records)),
        "duplicates": sorted(seen.duplicates),
        "bad_checksums": sorted(bad),
        "detected": sum(1 for r in seen.records.values() if r[1] == 1.0),
        "failures": seen.failures[:20],
        "retries": seen.retries,
        "wall_s": round(wall_s, 3),
        "stages": {},
    }
    for stage in STAGES:
        name = f"{prefix}-{stage.key}"
        dep = client.get_deployment(PROJECT, name)
        events = client.deployment_events(PROJECT, name, limit=10_000)
        scale = [e for e in events if e["kind"] == "scale"]
        started = [
            e for e in events if e["kind"] == "replica" and " starting on port " in e["message"]
        ]
        latencies = seen.latency_ms.get(stage.key, [])
        queue_seen = watch.samples.get(name, [])
        out["stages"][stage.key] = {
            "deployment": name,
            "target_concurrency": stage.scaling["target_concurrency"],
            "min_replicas": stage.scaling["min_replicas"],
            "max_replicas": stage.scaling["max_replicas"],
            "replicas_now": _ready(dep),
            "peak_desired": max([e["data"]["desired"] for e in scale] or [_ready(dep)]),
            "replicas_started": len(started),
            # What the autoscaler scales on: this stage's requests in flight + held at
            # the gateway (sampled from /-/metrics while the frames ran).
            "queue": {
                "mean": round(sum(queue_seen) / len(queue_seen), 2) if queue_seen else 0.0,
                "max": max(queue_seen or [0.0]),
                "samples": len(queue_seen),
            },
            "scale_events": [
                {"message": e["message"], "deployment": e["deployment"], **e["data"]} for e in scale
            ],
            "latency_ms": {
                "p50": round(_percentile(latencies, 0.5), 2),
                "p95": round(_percentile(latencies, 0.95), 2),
                "max": round(max(latencies or [0.0]), 2),
            },
        }
    return out


def print_summary(summary: dict[str, Any]) -> None:
    ok = not summary["missing"] and not summary["bad_checksums"] and not summary["duplicates"]
    print(
        f"\n{summary['frames_out']}/{summary['frames']} frames out "
        f"({'all correct' if ok else 'NOT all correct'}), {summary['detected']} with an "
        f"object, concurrency {summary['concurrency']}, {summary['wall_s']:.1f} s, "
        f"{summary['retries']} retries, {len(summary['failures'])} failed frames"
    )
    header = (
        f"{'stage':<8} {'target':>6} {'min-max':>7} {'now':>4} {'peak':>4} "
        f"{'queue mean/max':>14} {'p50 ms':>7} {'p95 ms':>7}"
    )
    print(header)
    print("-" * len(header))
    for key, s in summary["stages"].items():
        print(
            f"{key:<8} {s['target_concurrency']:>6g} "
            f"{str(s['min_replicas']) + '-' + str(s['max_replicas']):>7} "
            f"{s['replicas_now']:>4} {s['peak_desired']:>4} "
            f"{s['queue']['mean']:>9.2f}/{s['queue']['max']:<4g} "
            f"{s['latency_ms']['p50']:>7.1f} {s['latency_ms']['p95']:>7.1f}"
        )
    for key, s in summary["stages"].items():
        for e in s["scale_events"]:
            print(
                f"  {key}: scale {e['message']} (mean concurrency {e['mean_concurrency']:g}, "
                f"in flight {e['in_flight']}, queued {e['queued']})"
            )
    for failure in summary["failures"]:
        print(f"  failed: {failure}")


# ---- rendered for Kubernetes ----------------------------------------------------------------


def render_stages(client: Any, prefix: str, folder: Path) -> dict[str, list[str]]:
    """Each stage's manifests in ``folder/<stage>/``: the same three deployments on a
    cluster, each with a KEDA ScaledObject on its own in-flight requests (its queue)."""
    written: dict[str, list[str]] = {}
    for stage in STAGES:
        name = f"{prefix}-{stage.key}"
        files = client.render_deployment(
            PROJECT, name, {"kind": "kubernetes", "namespace": "video", "autoscaler": "keda"}
        )
        out = folder / stage.key
        out.mkdir(parents=True, exist_ok=True)
        for file_name, text in sorted(files.items()):
            (out / file_name).write_text(text)
        written[stage.key] = sorted(files)
        print(f"rendered {name}: {len(files)} manifests in {out}/")
    return written


# ---- main ---------------------------------------------------------------------------------


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--frames", type=int, default=300, help="frames to push (default 300)")
    parser.add_argument("--concurrency", type=int, default=6, help="frames in flight (6)")
    parser.add_argument("--prefix", default="video", help="names: <prefix>-decode, … (video)")
    parser.add_argument("--home", type=Path, help="MODELYARD_HOME of the server started here")
    parser.add_argument("--keep", action="store_true", help="keep the deployments afterwards")
    parser.add_argument("--summary", type=Path, help="also write the summary as JSON here")
    parser.add_argument(
        "--render",
        type=Path,
        help="also write each stage's Kubernetes manifests (KEDA on its own queue) here",
    )
    args = parser.parse_args(argv)
    if args.frames < 1 or not 1 <= args.concurrency <= 64:
        parser.error("--frames must be >= 1 and --concurrency between 1 and 64")
    return args


def run(args: argparse.Namespace, *, own_server: bool) -> dict[str, Any]:
    """Register, deploy, drive and summarize against the server the SDK is pointed at
    (``own_server``: one started here, which takes its deployments with it)."""
    from modelyard.client import connect

    client = connect()
    uris = register_models(args.prefix)
    endpoints = create_deployments(client, args.prefix, uris)
    try:
        wait_ready(client, args.prefix)
        print(f"deployed: {', '.join(f'{k} -> {u}' for k, u in endpoints.items())}")
        started = time.monotonic()
        seen, watch = drive(endpoints, args.frames, args.concurrency)
        wall_s = time.monotonic() - started
        summary = summarize(client, args.prefix, args.frames, args.concurrency, seen, watch, wall_s)
        if args.render is not None:
            summary["rendered"] = render_stages(client, args.prefix, args.render)
    finally:
        if not args.keep and not own_server:
            for stage in STAGES:
                with contextlib.suppress(Exception):
                    client.delete_deployment(PROJECT, f"{args.prefix}-{stage.key}")
    return summary


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    try:
        with contextlib.ExitStack() as stack:
            own_server = not os.environ.get("MODELYARD_TRACKING_URI")
            if own_server:
                home = args.home or Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="video-example-"))
                )
                uri = stack.enter_context(local_server(home.resolve()))
                print(f"started a modelyard server at {uri} (MODELYARD_HOME={home})")
                # The SDK and the client read these: the admin token the server wrote.
                os.environ.update(MODELYARD_TRACKING_URI=uri, MODELYARD_HOME=str(home.resolve()))
                os.environ.pop("MODELYARD_TOKEN", None)
            summary = run(args, own_server=own_server)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_summary(summary)
    if args.summary is not None:
        args.summary.write_text(json.dumps(summary, indent=2))
    clean = not (summary["missing"] or summary["bad_checksums"] or summary["duplicates"])
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
