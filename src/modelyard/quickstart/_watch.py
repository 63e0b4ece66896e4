"""Step 5 (second half): send the traffic and watch the deployment scale, live.

The load runs in its own thread (:mod:`modelyard.quickstart._traffic`); this thread
redraws a ``rich.live.Live`` view a few times a second, polls the deployment for its
replicas, and prints each new scaling / replica event above the view as it happens.
After the traffic it keeps watching, for a bounded time, until no replica is left.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from rich.live import Live

from modelyard.quickstart._deploy import (
    DEPLOYMENT,
    Deployment,
    active_replicas,
    ready_replicas,
    running_replicas,
)
from modelyard.quickstart._result import TrafficSummary
from modelyard.quickstart._traffic import LoadGenerator, Phase
from modelyard.quickstart.view import event_line, live_view

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rich.console import Console

    from modelyard.client import ModelyardClient

POLL_S = 0.5
REDRAW_S = 0.25
ZERO_TIMEOUT_S = 60.0


@dataclasses.dataclass
class DeploymentWatch:
    """What the view knows about the deployment; ``poll`` refreshes it."""

    client: ModelyardClient
    project: str
    console: Console
    cursor: int
    max_replicas: int
    replicas: int = 0
    ready: int = 0
    running: int = 0
    desired: int | None = None
    max_seen: int = 0
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def poll(self) -> Deployment:
        """Read the deployment and its new events; print the events worth a line."""
        dep = self.client.get_deployment(self.project, DEPLOYMENT)
        self.replicas, self.ready = active_replicas(dep), ready_replicas(dep)
        self.running = running_replicas(dep)
        self.max_seen = max(self.max_seen, self.replicas)
        for event in self.client.deployment_events(self.project, DEPLOYMENT, after=self.cursor):
            self.cursor = int(event["id"])
            self.events.append(event)
            if event["kind"] == "scale":
                self.desired = int(event["data"].get("desired", 0))
            line = event_line(event)
            if line is not None:
                self.console.print(line, highlight=False)
        return dep


def drive_traffic(
    watch: DeploymentWatch, url: str, bodies: Sequence[bytes], plan: Sequence[Phase]
) -> TrafficSummary:
    """Send ``plan`` to ``url`` with a live view, then wait (bounded) for zero replicas."""
    load = LoadGenerator(url, bodies, plan)
    started = time.monotonic()
    load.start()
    try:
        with Live(console=watch.console, refresh_per_second=8, transient=False) as live:

            def redraw(phase: str | None = None) -> None:
                snap = load.stats.snapshot()
                if phase is not None:
                    snap = dataclasses.replace(snap, phase=phase, concurrency=0)
                live.update(live_view(snap, load.total_s, watch.replicas, watch.ready,
                                      watch.max_replicas, watch.desired))  # fmt: skip

            _watch_until(watch, redraw, load.done, float("inf"))
            duration_s = time.monotonic() - started
            zero = _watch_until(
                watch, lambda: redraw("waiting for scale to zero"),
                lambda: watch.running == 0, ZERO_TIMEOUT_S,
            )  # fmt: skip
    finally:
        load.stop()
        watch.console.print()
    p50_ms, p99_ms = load.stats.percentiles_ms()
    return TrafficSummary(load.stats.sent, load.stats.failed, p50_ms, p99_ms, duration_s,
                          watch.max_seen, zero)  # fmt: skip


def _watch_until(
    watch: DeploymentWatch,
    redraw: Callable[[], None],
    done: Callable[[], bool],
    timeout_s: float,
) -> bool:
    """Poll and redraw until ``done()``; False if ``timeout_s`` passed first."""
    deadline = time.monotonic() + timeout_s
    next_poll = 0.0
    while True:
        now = time.monotonic()
        if now >= next_poll:
            watch.poll()
            next_poll = now + POLL_S
        redraw()
        if done():
            return True
        if now > deadline:
            return False
        time.sleep(REDRAW_S)
