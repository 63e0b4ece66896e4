"""``GET /-/metrics``: public Prometheus text whose counts match the traffic sent."""

from __future__ import annotations

import math
import time

import httpx
import pytest
from gateway_harness import GatewayProcess, Upstream, deployment, load, revision
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

pytestmark = pytest.mark.slow


def _scrape(gateway: GatewayProcess) -> dict[str, list[Sample]]:
    r = httpx.get(gateway.url + "/-/metrics")  # no secret: public, like /metrics
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert "x-request-id" not in r.headers
    families = text_string_to_metric_families(r.text)
    return {family.name: family.samples for family in families}


def _value(
    samples: list[Sample], name: str, deployment_name: str, revision_: str = "1", **labels: str
) -> float:
    found = [
        s.value
        for s in samples
        if s.name == name
        and s.labels.get("deployment") == deployment_name
        and s.labels.get("revision") == revision_
        and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (name, deployment_name, labels, found)
    return found[0]


def test_metrics_count_what_went_through(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, b, _ = upstreams
    name = "metered"
    gateway.push(
        deployment(
            name,
            revision(1, 100, a),
            revision(2, 0, b, shadow_percent=100),
            request_timeout_s=0.3,
        )
    )
    ok = load(gateway.port, f"/{name}/same", 200, 8)
    assert {status for status, _, _ in ok} == {200}
    with httpx.Client(base_url=gateway.url) as client:
        for _ in range(3):
            assert client.get(f"/{name}/x?status=500").status_code == 500
        assert client.get(f"/{name}/x?status=404").status_code == 404
        assert client.get(f"/{name}/x?delay_s=0.6").status_code == 504
    # Let every shadow copy reach an outcome.
    deadline = time.monotonic() + 20
    while True:
        shadow = gateway.revision_stats(name, 2)["shadow"]
        if shadow["agreed"] + shadow["disagreed"] + shadow["failed"] == shadow["sent"] == 205:
            break
        assert time.monotonic() < deadline, shadow
        time.sleep(0.02)

    families = _scrape(gateway)
    requests = families["modelyard_gateway_requests"]
    assert _value(requests, "modelyard_gateway_requests_total", name, code="200") == 200
    assert _value(requests, "modelyard_gateway_requests_total", name, code="500") == 3
    assert _value(requests, "modelyard_gateway_requests_total", name, code="404") == 1
    assert _value(requests, "modelyard_gateway_requests_total", name, code="504") == 1
    shadow_only = [
        s for s in requests if s.labels["deployment"] == name and s.labels["revision"] == "2"
    ]
    assert not shadow_only  # shadow copies are not answers to callers

    latency = [
        s
        for s in families["modelyard_gateway_request_duration_seconds"]
        if s.labels["deployment"] == name and s.labels["revision"] == "1"
    ]
    buckets = [s for s in latency if s.name.endswith("_bucket")]
    bounds = [float(s.labels["le"]) for s in buckets]
    counts = [s.value for s in buckets]
    assert bounds == sorted(bounds)
    assert bounds[-1] == math.inf
    assert len(bounds) > 10
    assert counts == sorted(counts)  # cumulative
    count = _value(latency, "modelyard_gateway_request_duration_seconds_count", name)
    assert counts[-1] == count == 205
    # The 504 took at least the 0.3 s timeout.
    assert counts[bounds.index(next(b for b in bounds if b >= 60))] == 205
    assert counts[max(i for i, b in enumerate(bounds) if b < 0.3)] <= 204
    total = _value(latency, "modelyard_gateway_request_duration_seconds_sum", name)
    assert 0.3 < total < 60

    for family in ("in_flight_requests", "queued_requests"):
        samples = families[f"modelyard_gateway_{family}"]
        assert _value(samples, f"modelyard_gateway_{family}", name) == 0
    timeouts = families["modelyard_gateway_timeouts"]
    assert _value(timeouts, "modelyard_gateway_timeouts_total", name) == 1
    rejected = families["modelyard_gateway_rejected"]
    assert _value(rejected, "modelyard_gateway_rejected_total", name) == 0

    shadow_samples = families["modelyard_gateway_shadow_requests"]
    outcomes = {
        outcome: _value(
            shadow_samples, "modelyard_gateway_shadow_requests_total", name, "2", outcome=outcome
        )
        for outcome in ("agreed", "disagreed", "failed", "dropped")
    }
    assert outcomes == {
        "agreed": shadow["agreed"],
        "disagreed": shadow["disagreed"],
        "failed": shadow["failed"],
        "dropped": 0,
    }
    assert outcomes["agreed"] == 200  # /same answers alike on both revisions
    assert outcomes["failed"] >= 1  # the slow one's copy timed out too

    assert families["modelyard_gateway_up"][0].value == 1
    assert families["process_cpu_seconds"][0].value > 0


def test_metrics_take_get_or_head_only(gateway: GatewayProcess) -> None:
    head = httpx.head(gateway.url + "/-/metrics")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 0
    assert httpx.post(gateway.url + "/-/metrics").status_code == 405
    # The rest of the control API still needs the secret.
    assert httpx.get(gateway.url + "/-/stats").status_code == 401
