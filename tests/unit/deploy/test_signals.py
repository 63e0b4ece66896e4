"""Gateway counters → policy observations and canary windows."""

from __future__ import annotations

from modelyard.deploy.signals import GatewaySnapshot, RevisionCounters, observation, window_stats
from modelyard.gateway.stats import LATENCY_BUCKETS_S


def counters(now_s: float, arrivals: int, area: float, **kw: object) -> RevisionCounters:
    return RevisionCounters(now_s=now_s, arrivals=arrivals, load_area=area, **kw)  # type: ignore[arg-type]


def test_observation_is_the_average_since_the_previous_snapshot() -> None:
    prev = counters(10.0, 100, 50.0, completions=90, service_count=90, service_s_sum=9.0)
    cur = counters(12.0, 180, 58.0, completions=172, service_count=170, service_s_sum=17.0,
                   in_flight=3, queued=1)  # fmt: skip
    obs = observation(prev, cur, replicas=2, ready_replicas=1)
    assert obs.mean_concurrency == 4.0  # (58 - 50) request-seconds over 2 s
    assert (obs.arrivals, obs.completions) == (80, 80)
    assert obs.completed_service_s == 8.0
    assert (obs.in_flight, obs.queued, obs.replicas, obs.ready_replicas) == (3, 1, 2, 1)


def test_a_gateway_restart_counts_from_zero_not_negative() -> None:
    prev = counters(100.0, 5000, 900.0)
    cur = counters(3.0, 40, 6.0)  # the gateway restarted: its clock and counters reset
    obs = observation(prev, cur, replicas=1, ready_replicas=1)
    assert obs.arrivals == 40
    assert obs.mean_concurrency >= 0


def test_window_stats_diff_the_latency_histogram() -> None:
    n = len(LATENCY_BUCKETS_S) + 1
    base = counters(0, 10, 0, completions=10, errors=1, latency_buckets=tuple([0] * n))
    hist = [0] * n
    hist[10] = 99
    hist[40] = 1
    cur = counters(60, 110, 10, completions=110, errors=3, latency_buckets=tuple(hist))
    w = window_stats(base, cur)
    assert (w.requests, w.errors) == (100, 2)
    assert w.p99_s is not None
    assert w.p99_s <= LATENCY_BUCKETS_S[10] * 1.0001


def test_snapshot_parsing() -> None:
    snap = GatewaySnapshot.parse({
        "now_s": 5.0,
        "routes_version": 7,
        "deployments": {"churn": {
            "revisions": {"1": {"in_flight": 2, "arrivals": 10, "load_area": 3.5}},
            "replicas": {"r-1": {"in_flight": 2, "requests": 10, "failures": 0}},
        }},
    })  # fmt: skip
    assert snap.routes_version == 7
    assert snap.revisions[("churn", 1)].in_flight == 2
    assert snap.replica_in_flight == {"r-1": 2}
