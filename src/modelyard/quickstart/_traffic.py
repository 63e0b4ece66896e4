"""Real HTTP load through the gateway: a ramp, a burst and a pause.

Closed-loop workers, each a thread with one keep-alive ``http.client`` connection that
sends its next request as soon as the last is answered; a driver thread runs the phases.
Threads and the standard library's client, because on a small machine the load generator
shares the cores with the gateway and the replicas: measured on 2 cores, httpx's
``AsyncClient`` spent 4.2 ms of CPU per request and ``http.client`` 0.2 ms, so with httpx
the client itself was the bottleneck and the replicas never saw enough load to scale.
Every answered request's latency is recorded; the counters are read under a lock.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

WINDOW_S = 5.0  # the live rate and percentiles are over the last few seconds
REQUEST_TIMEOUT_S = 30.0
RETRY_PAUSE_S = 0.05


@dataclass(frozen=True)
class Phase:
    """``concurrency`` closed-loop workers (each sends its next request when answered)."""

    name: str
    concurrency: int
    duration_s: float


def traffic_plan(scale: float = 1.0) -> tuple[Phase, ...]:
    """The walk: ramp 1 → 8 workers, a burst of 32, then a pause with no traffic.

    Args:
        scale: multiplies every duration (1.0: about 50 s of traffic).
    """
    base = (
        Phase("ramp", 1, 6.0),
        Phase("ramp", 2, 6.0),
        Phase("ramp", 4, 6.0),
        Phase("ramp", 8, 6.0),
        Phase("burst", 32, 16.0),
        Phase("pause", 0, 10.0),
    )
    return tuple(Phase(p.name, p.concurrency, p.duration_s * scale) for p in base)


def request_bodies(
    columns: Sequence[str], rows: Sequence[Sequence[float]], rows_per_request: int
) -> list[bytes]:
    """MLflow ``dataframe_split`` JSON bodies, each scoring ``rows_per_request`` rows."""
    names = list(columns)
    return [
        json.dumps({"dataframe_split": {"columns": names,
                                        "data": [list(r) for r in rows[i : i + rows_per_request]]}}
                   ).encode()
        for i in range(0, len(rows), rows_per_request)
    ]  # fmt: skip


@dataclass(frozen=True)
class LoadSnapshot:
    sent: int
    failed: int
    rate_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    phase: str
    concurrency: int
    elapsed_s: float
    last_error: str


class LoadStats:
    """Thread-safe counters: totals, every latency, and a sliding window for the view."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self.latencies_s: list[float] = []
        self._window: deque[tuple[float, float]] = deque()
        self.last_error = ""
        self.phase = "waiting"
        self.concurrency = 0
        self.started_at = time.monotonic()

    def record(self, latency_s: float, ok: bool, error: str = "") -> None:
        now = time.monotonic()
        with self._lock:
            self.sent += 1
            if ok:
                self.latencies_s.append(latency_s)
                self._window.append((now, latency_s))
            else:
                self.failed += 1
                self.last_error = error

    def set_phase(self, phase: Phase) -> None:
        with self._lock:
            self.phase, self.concurrency = phase.name, phase.concurrency

    def snapshot(self) -> LoadSnapshot:
        now = time.monotonic()
        with self._lock:
            while self._window and self._window[0][0] < now - WINDOW_S:
                self._window.popleft()
            recent = sorted(latency for _, latency in self._window)
            span_s = min(WINDOW_S, max(now - self.started_at, 1e-3))
            return LoadSnapshot(
                self.sent, self.failed, len(recent) / span_s,
                _percentile_ms(recent, 0.5), _percentile_ms(recent, 0.99),
                self.phase, self.concurrency, now - self.started_at, self.last_error,
            )  # fmt: skip

    def percentiles_ms(self) -> tuple[float | None, float | None]:
        """p50 and p99 of every answered request so far."""
        with self._lock:
            ordered = sorted(self.latencies_s)
        return _percentile_ms(ordered, 0.5), _percentile_ms(ordered, 0.99)


def _percentile_ms(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    rank = math.ceil(q * len(ordered))  # nearest rank
    return ordered[min(len(ordered), max(rank, 1)) - 1] * 1000.0


class LoadGenerator:
    """Runs a traffic plan against ``url`` in background threads."""

    def __init__(self, url: str, bodies: Sequence[bytes], plan: Sequence[Phase]) -> None:
        if not bodies:
            raise ValueError("no request bodies")
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._path = parts.path or "/"
        self.plan = tuple(plan)
        self.stats = LoadStats()
        self._bodies = bodies
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="quickstart-load", daemon=True)

    @property
    def total_s(self) -> float:
        return sum(p.duration_s for p in self.plan)

    def start(self) -> None:
        self.stats.started_at = time.monotonic()
        self._thread.start()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop sending (requests in flight finish) and wait for the threads."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        for number, phase in enumerate(self.plan):
            if self._stop.is_set():
                return
            self.stats.set_phase(phase)
            deadline = time.monotonic() + phase.duration_s
            workers = [
                threading.Thread(target=self._worker, args=(deadline, number * 1000 + i),
                                 name=f"quickstart-load-{i}", daemon=True)
                for i in range(phase.concurrency)
            ]  # fmt: skip
            for worker in workers:
                worker.start()
            self._stop.wait(max(0.0, deadline - time.monotonic()))
            for worker in workers:
                worker.join()
        self.stats.set_phase(Phase("done", 0, 0.0))

    def _bodies_from(self, offset: int) -> Iterator[bytes]:
        while True:
            for i in range(len(self._bodies)):
                yield self._bodies[(offset + i) % len(self._bodies)]

    def _worker(self, deadline: float, offset: int) -> None:
        headers = {"content-type": "application/json"}
        conn: http.client.HTTPConnection | None = None
        bodies = self._bodies_from(offset)
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(
                        self._host, self._port, timeout=REQUEST_TIMEOUT_S
                    )
                conn.request("POST", self._path, body=next(bodies), headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.stats.record(time.perf_counter() - started, False, repr(exc)[:200])
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(RETRY_PAUSE_S)  # a refused connection fails at once
                continue
            ok = response.status == 200
            error = "" if ok else f"HTTP {response.status}: {payload[:200]!r}"
            self.stats.record(time.perf_counter() - started, ok, error)
        if conn is not None:
            conn.close()
