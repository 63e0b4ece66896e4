"""From the gateway's cumulative counters to what policies and rollouts look at (pure).

The gateway reports counters that only grow (requests, errors, the time integral of
requests in the system, a latency histogram); the controller keeps the snapshot it last
used and diffs. A gateway restart resets its counters: a counter that went down means
"start again from zero", never a negative rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelyard.autoscale import Observation
from modelyard.deploy._rollout import WindowStats
from modelyard.gateway.stats import diff_buckets, quantile_from_buckets


@dataclass(frozen=True)
class RevisionCounters:
    """One revision's counters in one gateway stats snapshot."""

    now_s: float = 0.0
    in_flight: int = 0
    queued: int = 0
    arrivals: int = 0
    completions: int = 0
    service_count: int = 0
    errors: int = 0
    service_s_sum: float = 0.0
    service_sq_s2_sum: float = 0.0
    load_area: float = 0.0
    latency_buckets: tuple[int, ...] = ()
    shadow: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, now_s: float, raw: Mapping[str, Any]) -> RevisionCounters:
        return cls(
            now_s=now_s,
            in_flight=int(raw.get("in_flight", 0)),
            queued=int(raw.get("queued", 0)),
            arrivals=int(raw.get("arrivals", 0)),
            completions=int(raw.get("completions", 0)),
            service_count=int(raw.get("service_count", raw.get("completions", 0))),
            errors=int(raw.get("errors", 0)),
            service_s_sum=float(raw.get("service_s_sum", 0.0)),
            service_sq_s2_sum=float(raw.get("service_sq_s2_sum", 0.0)),
            load_area=float(raw.get("load_area", 0.0)),
            latency_buckets=tuple(int(c) for c in raw.get("latency_buckets", ())),
            shadow={k: int(v) for k, v in dict(raw.get("shadow", {})).items()},
        )


@dataclass(frozen=True)
class GatewaySnapshot:
    """A parsed ``GET /-/stats``: counters per (deployment, revision), load per replica."""

    now_s: float
    routes_version: int
    revisions: Mapping[tuple[str, int], RevisionCounters]
    replica_in_flight: Mapping[str, int]

    @classmethod
    def parse(cls, payload: Mapping[str, Any]) -> GatewaySnapshot:
        now_s = float(payload.get("now_s", 0.0))
        revisions: dict[tuple[str, int], RevisionCounters] = {}
        replicas: dict[str, int] = {}
        for name, dep in dict(payload.get("deployments", {})).items():
            for rev, raw in dict(dep.get("revisions", {})).items():
                revisions[(str(name), int(rev))] = RevisionCounters.of(now_s, raw)
            for rid, raw in dict(dep.get("replicas", {})).items():
                replicas[str(rid)] = int(raw.get("in_flight", 0))
        return cls(now_s, int(payload.get("routes_version", 0)), revisions, replicas)


def _reset(prev: RevisionCounters | None, cur: RevisionCounters) -> RevisionCounters:
    """``prev``, or zeros if the gateway restarted since (a counter went down)."""
    if prev is None or cur.arrivals < prev.arrivals or cur.load_area < prev.load_area:
        return RevisionCounters(now_s=prev.now_s if prev is not None else cur.now_s)
    return prev


def observation(
    prev: RevisionCounters | None,
    cur: RevisionCounters,
    *,
    replicas: int,
    ready_replicas: int,
) -> Observation:
    """What an autoscaling policy sees: current load and averages since ``prev``."""
    base = _reset(prev, cur)
    dt_s = cur.now_s - base.now_s
    area = cur.load_area - base.load_area
    mean = area / dt_s if dt_s > 0 else float(cur.in_flight + cur.queued)
    return Observation(
        replicas=replicas,
        ready_replicas=ready_replicas,
        in_flight=cur.in_flight,
        queued=cur.queued,
        mean_concurrency=max(0.0, mean),
        arrivals=cur.arrivals - base.arrivals,
        # Only requests a replica answered have a service time (not the gateway's own 5xx).
        completions=max(0, cur.service_count - base.service_count),
        completed_service_s=max(0.0, cur.service_s_sum - base.service_s_sum),
        completed_service_sq_s2=max(0.0, cur.service_sq_s2_sum - base.service_sq_s2_sum),
    )


def window_stats(base: RevisionCounters | None, cur: RevisionCounters | None) -> WindowStats:
    """Requests, errors and p99 latency of one revision between two snapshots."""
    if cur is None:
        return WindowStats()
    start = _reset(base, cur)
    if not cur.latency_buckets:
        buckets: list[int] = []
    elif len(start.latency_buckets) == len(cur.latency_buckets):
        buckets = diff_buckets(cur.latency_buckets, start.latency_buckets)
    else:
        buckets = list(cur.latency_buckets)
    return WindowStats(
        requests=cur.completions - start.completions,
        errors=cur.errors - start.errors,
        p99_s=quantile_from_buckets(buckets, 0.99) if buckets else None,
    )
