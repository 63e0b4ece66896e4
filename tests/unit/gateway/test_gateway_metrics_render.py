"""``/-/metrics`` rendered from the revision counters: names, labels, cumulative buckets."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from modelyard.gateway import LATENCY_BUCKETS_S
from modelyard.gateway._metrics import _EXPOSED, GatewayMetrics
from modelyard.gateway._routing import Routing
from modelyard.gateway._table import RouteTable
from modelyard.gateway.stats import RevisionStats


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


def _routing(loop: asyncio.AbstractEventLoop) -> Routing:
    routing = Routing(loop)
    table = {
        "version": 1,
        "deployments": [
            {
                "name": "churn",
                "revisions": [
                    {"revision": 1, "weight": 90, "replicas": []},
                    {"revision": 2, "weight": 10, "shadow_percent": 50, "replicas": []},
                ],
            },
            {"name": "idle", "revisions": [{"revision": 7, "weight": 100, "replicas": []}]},
        ],
    }
    routing.apply(RouteTable.from_json(table), 0.0)
    return routing


def _samples(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_complete_counts_each_status_and_sums_latency() -> None:
    stats = RevisionStats(0.0)
    for status, latency in [(200, 0.01), (200, 0.02), (503, 0.5), (499, 1.0)]:
        stats.complete(status, latency)
    assert stats.codes == {200: 2, 503: 1, 499: 1}
    assert stats.completions == 4
    assert stats.errors == 1
    assert stats.latency_s_sum == pytest.approx(1.53)


def test_exposed_bounds_are_a_subset_ending_at_60s() -> None:
    bounds = [LATENCY_BUCKETS_S[i] for i in _EXPOSED]
    assert bounds[-1] == 60.0
    assert bounds == sorted(bounds)
    assert 15 <= len(bounds) <= 25
    assert all(1.9 < b / a < 2.2 for a, b in itertools.pairwise(bounds))


def test_the_metrics_have_the_documented_names_and_labels(
    loop: asyncio.AbstractEventLoop,
) -> None:
    routing = _routing(loop)
    churn = routing.deployments["churn"].revisions
    one, two = churn[1].stats, churn[2].stats
    one.complete(200, 0.003)
    one.complete(200, 0.004)
    one.complete(504, 61.0)  # beyond the last bound: only +Inf holds it
    one.add_in_flight(3, 1.0)
    one.add_queued(2, 1.0)
    one.rejected, one.timeouts = 4, 1
    two.shadow_sent, two.shadow_agreed, two.shadow_disagreed = 5, 3, 1
    two.shadow_failed, two.shadow_dropped = 1, 2
    samples = _samples(GatewayMetrics(routing))

    def get(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    churn1 = {"deployment": "churn", "revision": "1"}
    churn2 = {"deployment": "churn", "revision": "2"}
    assert get("modelyard_gateway_up") == 1
    assert get("modelyard_gateway_requests_total", **churn1, code="200") == 2
    assert get("modelyard_gateway_requests_total", **churn1, code="504") == 1
    assert get("modelyard_gateway_in_flight_requests", **churn1) == 3
    assert get("modelyard_gateway_queued_requests", **churn1) == 2
    assert get("modelyard_gateway_rejected_total", **churn1) == 4
    assert get("modelyard_gateway_timeouts_total", **churn1) == 1
    histogram = "modelyard_gateway_request_duration_seconds"
    assert get(f"{histogram}_count", **churn1) == 3
    assert get(f"{histogram}_sum", **churn1) == pytest.approx(61.007)
    assert get(f"{histogram}_bucket", **churn1, le="60.0") == 2
    assert get(f"{histogram}_bucket", **churn1, le="+Inf") == 3
    assert get(f"{histogram}_count", deployment="idle", revision="7") == 0
    for outcome, count in {"agreed": 3, "disagreed": 1, "failed": 1, "dropped": 2}.items():
        assert get("modelyard_gateway_shadow_requests_total", **churn2, outcome=outcome) == count
    shadow = {labels for name, labels in samples if name.startswith("modelyard_gateway_shadow")}
    assert {dict(labels)["revision"] for labels in shadow} == {"2"}  # no shadow traffic on 1
    assert get("process_cpu_seconds_total") > 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 100.0), max_size=200))
def test_buckets_are_cumulative_counts_of_latencies_at_most_le(latencies: list[float]) -> None:
    loop = asyncio.new_event_loop()
    try:
        routing = _routing(loop)
        stats = routing.deployments["idle"].revisions[7].stats
        for latency in latencies:
            stats.complete(200, latency)
        samples = _samples(GatewayMetrics(routing))
    finally:
        loop.close()
    name = "modelyard_gateway_request_duration_seconds_bucket"
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (n, labels), value in samples.items()
        if n == name and dict(labels)["deployment"] == "idle"
    )
    assert len(buckets) == len(_EXPOSED) + 1
    assert buckets[-1] == (math.inf, len(latencies))
    for le, count in buckets:
        assert count == sum(1 for v in latencies if v <= le)
