"""Serverless functions, modelled on AWS Lambda, for ``modelyard cost estimate``.

A request trace is replayed against a function platform that gives every request an
instance of its own (concurrency 1 per instance, as Lambda's on-demand functions):

- a *warm* instance (idle since it finished a request at most ``keep_alive_s`` ago)
  takes the request at once; the most recently freed one is used first, so surplus
  instances age out as the platform scales in;
- otherwise a new instance *cold-starts*: the request waits ``cold_start_s`` more;
- when ``max_concurrency`` instances are busy the request is *throttled*: it fails
  (Lambda answers 429 to a synchronous call) and is not billed;
- a request whose service time exceeds ``max_execution_s`` *times out*: it fails, is
  billed for ``max_execution_s``, and its instance is reset (Lambda resets an
  execution environment whose invocation timed out, so the next request on it would
  start cold: here, it is simply not reused).

Billing, per invocation (throttled requests are not invocations): the request price,
plus memory x billed duration, where the billed duration is the run time rounded up to
the millisecond (at least 1 ms) and, for a cold start, includes the start-up (INIT)
time: AWS bills the INIT phase of on-demand functions since 1 August 2025 ("AWS Lambda
standardizes billing for INIT Phase", AWS Compute Blog, April 2025); ``bill_cold_start``
turns that off for platforms that do not. A GPU, when asked for, is billed per second
of the same billed duration (see :class:`ServerlessRates`).

Everything here is pure and deterministic: the same trace and configuration give the
same result, with no clock and no randomness.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from modelyard.autoscale.simulator import SimResult
from modelyard.autoscale.traces import FloatArray
from modelyard.core.errors import InvalidInput
from modelyard.cost.prices import PriceCatalog

SERVED, THROTTLED, TIMED_OUT = 0, 1, 2


@dataclass(frozen=True)
class ServerlessConfig:
    """The function and the platform's limits.

    Attributes:
        memory_gib: memory configured for the function (GB = GiB, as in the catalog).
        max_concurrency: instances that may be busy at once; more requests are throttled.
        max_execution_s: an invocation's time limit; longer requests time out.
        cold_start_s: start-up time of a new instance, added to its first request.
        keep_alive_s: how long an idle instance stays warm.
        bill_cold_start: whether a cold start's start-up time is billed.
        gpu: GPUs per instance (billed per second of billed duration).
    """

    memory_gib: float
    max_concurrency: int
    max_execution_s: float
    cold_start_s: float
    keep_alive_s: float
    bill_cold_start: bool = True
    gpu: float = 0.0

    def __post_init__(self) -> None:
        checks = (
            ("--memory-gb", self.memory_gib, self.memory_gib > 0, "> 0"),
            ("--max-concurrency", self.max_concurrency, self.max_concurrency >= 1, ">= 1"),
            ("--max-execution-s", self.max_execution_s, self.max_execution_s > 0, "> 0"),
            ("--serverless-cold-start-s", self.cold_start_s, self.cold_start_s >= 0, ">= 0"),
            ("--keep-alive-s", self.keep_alive_s, self.keep_alive_s >= 0, ">= 0"),
            ("--gpu", self.gpu, self.gpu >= 0, ">= 0"),
        )
        for name, value, ok, want in checks:
            if not (ok and math.isfinite(value)):
                raise InvalidInput(f"{name} must be a finite number {want}, got {value}")

    @classmethod
    def from_catalog(
        cls,
        catalog: PriceCatalog,
        *,
        memory_gib: float,
        gpu: float = 0.0,
        max_concurrency: int | None = None,
        max_execution_s: float | None = None,
        cold_start_s: float | None = None,
        keep_alive_s: float | None = None,
        bill_cold_start: bool = True,
    ) -> ServerlessConfig:
        """The catalog's ``[serverless]`` limits, each overridden when given."""

        def pick(given: float | None, key: str) -> float:
            return catalog.number(f"serverless.{key}") if given is None else given

        return cls(
            memory_gib=memory_gib,
            max_concurrency=int(pick(max_concurrency, "max_concurrency")),
            max_execution_s=pick(max_execution_s, "max_execution_s"),
            cold_start_s=pick(cold_start_s, "cold_start_s"),
            keep_alive_s=pick(keep_alive_s, "keep_alive_s"),
            bill_cold_start=bill_cold_start,
            gpu=gpu,
        )


@dataclass(frozen=True)
class ServerlessRun:
    """What happened to each request.

    Attributes:
        arrival_s: arrival times, ascending.
        service_s: service times (what each request would need).
        outcome: ``SERVED``, ``THROTTLED`` or ``TIMED_OUT`` per request.
        cold: whether the request started a new instance.
        instance: the instance that ran it (numbered from 0), -1 if throttled.
        busy_until_s: when its instance was free again; NaN if throttled.
        billed_ms: billed duration in whole ms; 0 if throttled.
        config: the configuration replayed.
    """

    arrival_s: FloatArray
    service_s: FloatArray
    outcome: NDArray[np.int8]
    cold: NDArray[np.bool_]
    instance: NDArray[np.int64]
    busy_until_s: FloatArray
    billed_ms: NDArray[np.int64]
    config: ServerlessConfig

    @property
    def requests(self) -> int:
        return int(self.arrival_s.size)

    @property
    def served(self) -> int:
        return int((self.outcome == SERVED).sum())

    @property
    def throttled(self) -> int:
        return int((self.outcome == THROTTLED).sum())

    @property
    def timed_out(self) -> int:
        return int((self.outcome == TIMED_OUT).sum())

    @property
    def failures(self) -> int:
        return self.throttled + self.timed_out

    @property
    def invocations(self) -> int:
        """Requests that ran (and are billed): served or timed out."""
        return self.requests - self.throttled

    @property
    def cold_starts(self) -> int:
        return int(self.cold.sum())

    @property
    def billed_s(self) -> float:
        return int(self.billed_ms.sum()) / 1000.0

    @property
    def gib_seconds(self) -> float:
        return self.billed_s * self.config.memory_gib

    @property
    def gpu_seconds(self) -> float:
        return self.billed_s * self.config.gpu

    def start_s(self) -> FloatArray:
        """When each served request's code started (after any cold start); NaN if it failed."""
        delay = np.where(self.cold, self.config.cold_start_s, 0.0)
        return np.where(self.outcome == SERVED, self.arrival_s + delay, np.nan)

    def concurrency(self) -> list[tuple[float, int]]:
        """Busy instances over time, as ``(t, count)`` steps from ``(0, 0)``."""
        ran = self.outcome != THROTTLED
        times = np.concatenate([self.arrival_s[ran], self.busy_until_s[ran]])
        steps = np.concatenate([np.ones(int(ran.sum())), -np.ones(int(ran.sum()))])
        order = np.lexsort((steps, times))  # at equal times, departures first
        counts = np.cumsum(steps[order]).astype(np.int64)
        return [(0.0, 0), *zip(times[order].tolist(), counts.tolist(), strict=True)]

    def as_sim_result(self, name: str = "serverless") -> SimResult:
        """The run as the autoscale simulator reports one, so its SLO check, summary
        and plot apply: failed requests count as dropped, busy instances as replicas."""
        start = self.start_s()
        ran = self.outcome != THROTTLED
        timeline = self.concurrency()
        return SimResult(
            policy=name,
            arrival_s=self.arrival_s,
            service_s=self.service_s,
            start_s=start,
            finish_s=start + self.service_s,
            end_s=float(np.max(self.busy_until_s[ran])) if ran.any() else 0.0,
            replica_seconds=float((self.busy_until_s[ran] - self.arrival_s[ran]).sum()),
            scale_events=0,
            cold_starts=self.cold_starts,
            max_replicas=max(n for _, n in timeline),
            timeline=timeline,
        )


def simulate_serverless(
    arrival_s: FloatArray, service_s: FloatArray, config: ServerlessConfig
) -> ServerlessRun:
    """Replay requests (``arrival_s`` ascending) on the function platform ``config``.

    Raises:
        InvalidInput: arrays of different lengths, or arrivals out of order.
    """
    if arrival_s.shape != service_s.shape:
        raise InvalidInput("arrival and service time arrays differ in length")
    if arrival_s.size > 1 and bool(np.any(np.diff(arrival_s) < 0)):
        raise InvalidInput("arrival times must be in ascending order")
    n = int(arrival_s.size)
    outcome = np.zeros(n, dtype=np.int8)
    cold = np.zeros(n, dtype=np.bool_)
    instance = np.full(n, -1, dtype=np.int64)
    busy_until = np.full(n, np.nan)
    limit, keep = config.max_concurrency, config.keep_alive_s
    max_run, start_up = config.max_execution_s, config.cold_start_s
    busy: list[tuple[float, int, bool]] = []  # (free at, instance, reusable)
    idle: deque[tuple[float, int]] = deque()  # (free since, instance), oldest first
    created = 0
    for i, (t, need) in enumerate(zip(arrival_s.tolist(), service_s.tolist(), strict=True)):
        while busy and busy[0][0] <= t:
            free_at, ident, reusable = heapq.heappop(busy)
            if reusable:
                idle.append((free_at, ident))
        while idle and idle[0][0] + keep < t:
            idle.popleft()
        if len(busy) >= limit:
            outcome[i] = THROTTLED
            continue
        if idle:
            ident, delay = idle.pop()[1], 0.0
        else:
            ident, delay, created = created, start_up, created + 1
            cold[i] = True
        timed_out = need > max_run
        if timed_out:
            outcome[i] = TIMED_OUT
        instance[i] = ident
        free_at = t + delay + min(need, max_run)
        busy_until[i] = free_at
        heapq.heappush(busy, (free_at, ident, not timed_out))
    return ServerlessRun(
        arrival_s=arrival_s,
        service_s=service_s,
        outcome=outcome,
        cold=cold,
        instance=instance,
        busy_until_s=busy_until,
        billed_ms=_billed_ms(service_s, outcome, cold, config),
        config=config,
    )


def _billed_ms(
    service_s: FloatArray,
    outcome: NDArray[np.int8],
    cold: NDArray[np.bool_],
    config: ServerlessConfig,
) -> NDArray[np.int64]:
    run_s = np.minimum(service_s, config.max_execution_s)
    if config.bill_cold_start:
        run_s = run_s + np.where(cold, config.cold_start_s, 0.0)
    # Round to a nanosecond before the ceiling: 0.04 s is 40 ms, not 40.000000000000004.
    billed = np.maximum(np.ceil(np.round(run_s * 1000.0, 6)), 1.0)
    return np.where(outcome == THROTTLED, 0, billed).astype(np.int64)


@dataclass(frozen=True)
class ServerlessRates:
    """Serverless prices per base unit, in the catalog's currency.

    Attributes:
        request: per invocation (``serverless.request``).
        gib_second: per GiB-second of billed duration (``serverless.compute``).
        gpu_second: per GPU-second of billed duration. The catalog has no serverless GPU
            price, so :meth:`from_catalog` uses the provisioned one (``provisioned.gpu``);
            serverless GPU platforms charge per GPU-second at or above it.
    """

    request: float
    gib_second: float
    gpu_second: float

    @classmethod
    def from_catalog(cls, catalog: PriceCatalog) -> ServerlessRates:
        return cls(
            catalog.rate("serverless.request"),
            catalog.rate("serverless.compute"),
            catalog.gpu_second,
        )


def serverless_cost(run: ServerlessRun, rates: ServerlessRates) -> float:
    """What the run costs: invocations x request price + billed GiB-seconds x compute
    price + billed GPU-seconds x GPU price."""
    return (
        run.invocations * rates.request
        + run.gib_seconds * rates.gib_second
        + run.gpu_seconds * rates.gpu_second
    )
