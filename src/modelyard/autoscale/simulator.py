"""Deterministic discrete-event replay of a trace through the live controller.

Arrivals enter the gateway's FIFO queue (bounded: a full queue drops the request), are
dispatched to the least-loaded ready replica with a free slot (``concurrency_per_replica``
slots each), and hold the slot for their service time. New replicas become ready after
``cold_start_s``. An :class:`AutoscaleController` ticks every ``policy.interval_s``
seconds on a simulated :class:`FakeClock`, observes what a live gateway would report and
scales the simulated replicas; a request arriving while there are no replicas pokes the
controller at once (Knative's activator does the same). Nothing is random here, so the
same trace and policy always give the same result.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard.autoscale._base import AnyPolicy, Observation
from modelyard.autoscale._controller import AutoscaleController, ScalingEvent
from modelyard.autoscale.traces import FloatArray
from modelyard.core.clock import FakeClock
from modelyard.core.errors import InvalidInput

_DONE, _READY, _TICK = 0, 1, 2


@dataclass(frozen=True)
class SimConfig:
    """The simulated deployment.

    Attributes:
        concurrency_per_replica: requests a replica serves at once.
        cold_start_s: seconds from starting a replica to its readiness.
        queue_limit: requests the gateway queue holds; more are dropped.
        keep_decisions: record every controller decision in the result (for replays).
        foresight_smoothing_s: for the oracle only: the queueing delay the SLO allows
            (capped at the cold start); its demand is averaged over that window.
    """

    concurrency_per_replica: int
    cold_start_s: float
    queue_limit: int = 1000
    keep_decisions: bool = False
    foresight_smoothing_s: float = 0.0

    def __post_init__(self) -> None:
        if self.concurrency_per_replica < 1:
            raise InvalidInput("target concurrency must be >= 1")
        if not (self.cold_start_s >= 0 and math.isfinite(self.cold_start_s)):
            raise InvalidInput("cold start must be a finite number of seconds >= 0")
        if self.queue_limit < 0:
            raise InvalidInput("queue limit must be >= 0")


@dataclass
class SimResult:
    """What happened to each request and to the replicas, for one policy."""

    policy: str
    arrival_s: FloatArray
    service_s: FloatArray
    start_s: FloatArray  # NaN for dropped requests
    finish_s: FloatArray  # NaN for dropped requests
    end_s: float
    replica_seconds: float
    scale_events: int
    cold_starts: int
    max_replicas: int
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (t, billed replicas)
    decisions: list[ScalingEvent] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        return int(np.isnan(self.finish_s).sum())


class _Replica:
    __slots__ = ("born_s", "dead", "draining", "in_flight", "ready")

    def __init__(self, born_s: float, ready: bool) -> None:
        self.born_s = born_s
        self.ready = ready
        self.in_flight = 0
        self.draining = False
        self.dead = False


class DemandForesight:
    """The oracle's view: peak concurrency demand over a coming window.

    Demand is the number of requests that would be in service at once if none waited,
    averaged over the last ``smoothing_s`` seconds when the SLO lets requests queue that
    long (a burst of short requests may then share fewer slots). Precomputed once on a
    grid, so a query is a slice maximum.
    """

    def __init__(self, arrival_s: FloatArray, service_s: FloatArray, smoothing_s: float = 0.0):
        self._smoothing_s = smoothing_s
        ends = np.sort(arrival_s + service_s)
        if smoothing_s <= 0:
            times = np.concatenate([arrival_s, ends])
            steps = np.concatenate([np.ones(arrival_s.size), -np.ones(ends.size)])
            order = np.lexsort((steps, times))  # at equal times, departures first
            self._times = times[order]
            self._values = np.cumsum(steps[order])
            return
        span = float(ends[-1]) if ends.size else 0.0
        self._dt = max(smoothing_s / 4.0, span / 4e6)
        grid = np.arange(0.0, span + 2 * self._dt, self._dt)
        # Work done by an ideal (no-wait) schedule up to each grid time: A(t).
        started = np.searchsorted(arrival_s, grid, side="right")
        finished = np.searchsorted(ends, grid, side="right")
        csum_a = np.concatenate([[0.0], np.cumsum(arrival_s)])
        csum_e = np.concatenate([[0.0], np.cumsum(ends)])
        work = (started * grid - csum_a[started]) - (finished * grid - csum_e[finished])
        lag = max(1, round(smoothing_s / self._dt))
        previous = np.concatenate([np.zeros(lag), work[:-lag]])
        self._values = (work - previous) / (lag * self._dt)
        self._times = grid

    def __call__(self, now_s: float, horizon_s: float) -> int:
        times, values = self._times, self._values
        lo = max(int(np.searchsorted(times, now_s, side="right")) - 1, 0)
        hi = int(np.searchsorted(times, now_s + horizon_s, side="right"))
        if hi <= lo:
            return 0
        peak = float(values[lo:hi].max())
        return max(math.ceil(peak - 1e-9), 0)


class _Sim:
    def __init__(
        self, policy: AnyPolicy, arrival_s: FloatArray, service_s: FloatArray, cfg: SimConfig
    ) -> None:
        self.cfg = cfg
        self.arrivals = arrival_s.tolist()
        self.services = service_s.tolist()
        n = len(self.arrivals)
        self.start = [math.nan] * n
        self.finish = [math.nan] * n
        self.now = 0.0
        self.clock = FakeClock(start_s=0.0)
        self.heap: list[tuple[float, int, int, Any]] = []
        self.seq = 0
        self.queue: deque[int] = deque()
        self.active: list[_Replica] = []
        self.draining = 0
        self.free_slots = 0
        self.ready_count = 0
        self.in_flight = 0
        self.warm_start = True
        self.replica_seconds = 0.0
        self.cold_starts = 0
        self.scale_events = 0
        self.last_t = 0.0
        self.max_replicas = 0
        self.timeline: list[tuple[float, int]] = [(0.0, 0)]
        # Counters since the controller's last observation.
        self.area = 0.0
        self.area_t = 0.0
        self.obs_t = 0.0
        self.n_arrived = 0
        self.n_done = 0
        self.done_service_s = 0.0
        self.done_service_sq = 0.0
        foresight = None
        if policy.foresight_s > 0:
            foresight = DemandForesight(arrival_s, service_s, cfg.foresight_smoothing_s)
        self.controller: AutoscaleController[Any] = AutoscaleController(
            policy,
            clock=self.clock,
            observe=self.observe,
            apply=self.apply,
            foresight=foresight,
            keep_events=None if cfg.keep_decisions else 1,
        )

    def push(self, t: float, kind: int, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, payload))

    def integrate(self, t: float) -> None:
        self.area += (self.in_flight + len(self.queue)) * (t - self.area_t)
        self.area_t = t

    def observe(self) -> Observation:
        self.integrate(self.now)
        span = self.now - self.obs_t
        load = self.in_flight + len(self.queue)
        obs = Observation(
            replicas=len(self.active),
            ready_replicas=self.ready_count,
            in_flight=self.in_flight,
            queued=len(self.queue),
            mean_concurrency=self.area / span if span > 0 else float(load),
            arrivals=self.n_arrived,
            completions=self.n_done,
            completed_service_s=self.done_service_s,
            completed_service_sq_s2=self.done_service_sq,
        )
        self.area, self.obs_t = 0.0, self.now
        self.n_arrived = self.n_done = 0
        self.done_service_s = self.done_service_sq = 0.0
        return obs

    def note_replicas(self) -> None:
        billed = len(self.active) + self.draining
        self.max_replicas = max(self.max_replicas, billed)
        self.timeline.append((self.now, billed))

    def apply(self, desired: int) -> None:
        now, active = self.now, self.active
        if not self.warm_start:
            self.scale_events += 1
        while len(active) < desired:
            replica = _Replica(now, ready=self.warm_start)
            active.append(replica)
            if self.warm_start:
                self.make_ready(replica)
            else:
                self.cold_starts += 1
                self.push(now + self.cfg.cold_start_s, _READY, replica)
        while len(active) > desired:
            self.retire(self.pick_victim())
        self.note_replicas()

    def pick_victim(self) -> _Replica:
        starting = [r for r in self.active if not r.ready]
        if starting:
            return starting[-1]
        return min(reversed(self.active), key=lambda r: r.in_flight)

    def retire(self, replica: _Replica) -> None:
        self.active.remove(replica)
        if replica.ready:
            self.ready_count -= 1
            self.free_slots -= self.cfg.concurrency_per_replica - replica.in_flight
        if replica.in_flight:
            replica.draining = True
            self.draining += 1
        else:
            self.bury(replica)

    def bury(self, replica: _Replica) -> None:
        replica.dead = True
        self.replica_seconds += self.now - replica.born_s

    def make_ready(self, replica: _Replica) -> None:
        replica.ready = True
        self.ready_count += 1
        self.free_slots += self.cfg.concurrency_per_replica
        while self.queue and replica.in_flight < self.cfg.concurrency_per_replica:
            self.serve(self.queue.popleft(), replica)

    def serve(self, request: int, replica: _Replica) -> None:
        replica.in_flight += 1
        self.in_flight += 1
        self.free_slots -= 1
        self.start[request] = self.now
        self.push(self.now + self.services[request], _DONE, (replica, request))

    def arrive(self, request: int) -> None:
        self.n_arrived += 1
        self.last_t = self.now
        if self.free_slots > 0:
            best = None
            for replica in self.active:
                if replica.ready and (best is None or replica.in_flight < best.in_flight):
                    best = replica
            assert best is not None
            self.serve(request, best)
        elif len(self.queue) < self.cfg.queue_limit:
            self.queue.append(request)
        if not self.active:
            self.controller.tick()  # the gateway pokes the autoscaler: scale from zero

    def complete(self, replica: _Replica, request: int) -> None:
        self.finish[request] = self.last_t = self.now
        self.n_done += 1
        service = self.services[request]
        self.done_service_s += service
        self.done_service_sq += service * service
        replica.in_flight -= 1
        self.in_flight -= 1
        if replica.draining:
            if replica.in_flight == 0:
                self.draining -= 1
                self.bury(replica)
                self.note_replicas()
        else:
            self.free_slots += 1
            if self.queue:
                self.serve(self.queue.popleft(), replica)

    def run(self) -> SimResult:
        self.controller.tick()  # the deployment was running before the trace starts
        self.warm_start = False
        interval = self.controller.interval_s
        self.push(interval, _TICK, None)
        arrivals, n, i = self.arrivals, len(self.arrivals), 0
        heap, clock = self.heap, self.clock
        while True:
            if i < n and (not heap or arrivals[i] < heap[0][0]):
                self.now = arrivals[i]
                self.integrate(self.now)
                self.arrive(i)
                i += 1
                continue
            if not heap:
                break
            t, _, kind, payload = heapq.heappop(heap)
            self.now = t
            self.integrate(t)
            if kind == _DONE:
                self.complete(*payload)
            elif kind == _READY:
                if not payload.dead:
                    self.make_ready(payload)
            else:
                if i >= n and self.in_flight == 0 and not self.queue:
                    break
                clock.advance(t - clock.monotonic())
                self.controller.tick()
                self.push(t + interval, _TICK, None)
        return self.result()

    def result(self) -> SimResult:
        end = self.last_t
        for replica in self.active:
            self.replica_seconds += max(end - replica.born_s, 0.0)
        decisions: list[ScalingEvent] = []
        if self.cfg.keep_decisions:
            decisions = list(self.controller.events)
        return SimResult(
            policy=self.controller.policy.name,
            arrival_s=np.asarray(self.arrivals, dtype=np.float64),
            service_s=np.asarray(self.services, dtype=np.float64),
            start_s=np.asarray(self.start, dtype=np.float64),
            finish_s=np.asarray(self.finish, dtype=np.float64),
            end_s=end,
            replica_seconds=self.replica_seconds,
            scale_events=self.scale_events,
            cold_starts=self.cold_starts,
            max_replicas=self.max_replicas,
            timeline=self.timeline,
            decisions=decisions,
        )


def simulate(
    policy: AnyPolicy, arrival_s: FloatArray, service_s: FloatArray, config: SimConfig
) -> SimResult:
    """Replay ``arrival_s`` (sorted seconds) with ``service_s`` through ``policy``.

    Args:
        policy: any policy, usually :class:`Bounded`; the oracle is given foresight.
        arrival_s: request arrival times, ascending.
        service_s: the service time of each request.
        config: the simulated deployment.

    Returns:
        Per-request start and finish times, replica-seconds and scaling counts.

    Raises:
        InvalidInput: mismatched arrays.
    """
    if arrival_s.shape != service_s.shape:
        raise InvalidInput("arrival and service time arrays differ in length")
    return _Sim(policy, arrival_s, service_s, config).run()
