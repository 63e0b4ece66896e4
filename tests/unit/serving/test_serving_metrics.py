"""The runtime's lock-free metrics render as valid Prometheus text with consistent histograms."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from modelyard.serving._metrics import ServingMetrics


def _samples(metrics: ServingMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counters_histograms_and_gauges_render_as_prometheus_text() -> None:
    depth = [3]
    metrics = ServingMetrics("churn", "2", lambda: depth[0])
    for duration in (0.0004, 0.003, 0.003, 7.0, 20.0):
        metrics.observe_request("/invocations", 200, duration)
    metrics.observe_request("/invocations", 400, 0.001)
    metrics.observe_request("other", 404, 0.0001)
    for rows in (1, 64, 64, 2000):
        metrics.observe_batch(rows)
    metrics.in_flight = 5

    s = _samples(metrics)
    base = (("model", "churn"), ("version", "2"))
    route = (*base, ("route", "/invocations"))
    assert s[("modelyard_serving_requests_total", tuple(sorted((*route, ("status", "200")))))] == 5
    assert s[("modelyard_serving_requests_total", tuple(sorted((*route, ("status", "400")))))] == 1
    latency = "modelyard_serving_request_duration_seconds"
    key = tuple(sorted(route))

    def bucket(le: str) -> float:
        return s[(f"{latency}_bucket", tuple(sorted((*route, ("le", le)))))]

    assert bucket("0.0005") == 1  # 0.0004
    assert bucket("0.001") == 2  # + the 400's 0.001 (le is inclusive)
    assert bucket("0.005") == 4
    assert bucket("5.0") == 4
    assert bucket("10.0") == 5  # 7.0
    assert bucket("+Inf") == 6  # 20.0 lands only in +Inf
    assert s[(f"{latency}_count", key)] == 6
    assert abs(s[(f"{latency}_sum", key)] - 27.0074) < 1e-9
    batch = "modelyard_serving_batch_size_rows"
    assert s[(f"{batch}_bucket", tuple(sorted((*base, ("le", "64.0")))))] == 3
    assert s[(f"{batch}_bucket", tuple(sorted((*base, ("le", "+Inf")))))] == 4
    assert s[(f"{batch}_count", base)] == 4
    assert s[("modelyard_serving_queue_depth", base)] == 3
    assert s[("modelyard_serving_in_flight_requests", base)] == 5


def test_every_histogram_is_cumulative() -> None:
    metrics = ServingMetrics("m", "1", lambda: 0)
    for i in range(200):
        metrics.observe_request("/predict", 200, (i % 17) * 0.003)
    text = metrics.render().decode()
    buckets = [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "modelyard_serving_request_duration_seconds_bucket"
    ]
    assert buckets == sorted(buckets)
    assert buckets[-1] == 200
