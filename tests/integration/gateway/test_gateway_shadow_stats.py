"""Shadow traffic, its comparison counters, and the life of stats across route updates."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from gateway_harness import AUTH, GatewayProcess, Upstream, deployment, revision

pytestmark = pytest.mark.slow


def _settled_shadow(gateway: GatewayProcess, name: str, rev: int, sent: int) -> dict[str, Any]:
    """The shadow counters once every one of ``sent`` shadows has an outcome."""
    deadline = time.monotonic() + 20
    while True:
        shadow: dict[str, Any] = gateway.revision_stats(name, rev)["shadow"]
        if shadow["agreed"] + shadow["disagreed"] + shadow["failed"] >= sent:
            return shadow
        assert time.monotonic() < deadline, shadow
        time.sleep(0.01)


def test_shadow_copies_are_compared_and_counted(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, b, _ = upstreams
    name = "shadowed"
    gateway.push(deployment(name, revision(1, 100, a), revision(2, 0, b, shadow_percent=100)))
    with httpx.Client(base_url=gateway.url) as client:
        for _ in range(10):  # same answer from both, apart from the ignored "id"/"model_name"
            r = client.post(f"/{name}/same", content=b"{}")
            assert r.status_code == 200
            assert r.headers["x-modelyard-revision"] == "1"
        for _ in range(5):  # the echo names the replica: the answers differ
            assert client.get(f"/{name}/who").headers["x-modelyard-replica"] == "r-a"
    shadow = _settled_shadow(gateway, name, 2, 15)
    assert shadow == {"sent": 15, "agreed": 10, "disagreed": 5, "failed": 0, "dropped": 0}
    stats = gateway.stats()["deployments"][name]
    primary, shadowed = stats["revisions"]["1"], stats["revisions"]["2"]
    assert (primary["arrivals"], primary["completions"]) == (15, 15)
    assert (shadowed["arrivals"], shadowed["completions"]) == (0, 0)
    assert shadowed["in_flight"] == 0
    assert shadowed["load_area"] > 0  # shadow load counts, so the controller can scale it
    assert stats["replicas"]["r-b"]["requests"] == 15


def test_failing_and_dropped_shadows_are_counted(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, b, _ = upstreams
    name = "shadowfail"
    gateway.push(
        deployment(
            name,
            revision(1, 100, a),
            revision(2, 0, b, shadow_percent=100),
            revision(3, 0, shadow_percent=100),  # no replicas: dropped, and a wakeup
            request_timeout_s=0.3,
        )
    )
    # Both replicas wait 0.5 s: the primary gets 504, the shadow copy counts as failed.
    r = httpx.get(f"{gateway.url}/{name}/x?delay_s=0.5")
    assert r.status_code == 504
    shadow = _settled_shadow(gateway, name, 2, 1)
    assert (shadow["sent"], shadow["failed"]) == (1, 1)
    assert gateway.revision_stats(name, 3)["shadow"]["dropped"] == 1
    wake = httpx.get(gateway.url + "/-/wakeups?timeout_s=5", headers=AUTH).json()["wake"]
    assert {"deployment": name, "revision": 3, "queued": 0} in wake


def test_stats_of_a_removed_deployment_are_reported_once_more(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, _, _ = upstreams
    name = "leaving"
    gateway.push(deployment(name, revision(1, 100, a)))
    assert httpx.get(f"{gateway.url}/{name}/x").status_code == 200
    gateway.push()
    assert httpx.get(f"{gateway.url}/{name}/x").status_code == 404
    last = gateway.stats()
    assert last["deployments"][name]["revisions"]["1"]["completions"] == 1
    assert name not in gateway.stats()["deployments"]


def test_stats_shape(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, _, _ = upstreams
    version = gateway.push(deployment("shape", revision(1, 100, a)))
    httpx.get(f"{gateway.url}/shape/x")
    first = gateway.stats()
    second = gateway.stats()
    assert second["now_s"] > first["now_s"]
    assert first["routes_version"] == version
    entry = first["deployments"]["shape"]
    assert set(entry) == {"revisions", "replicas"}
    assert set(entry["replicas"]["r-a"]) == {"in_flight", "requests", "failures"}
    rev = entry["revisions"]["1"]
    assert set(rev) >= {
        "in_flight",
        "queued",
        "arrivals",
        "completions",
        "errors",
        "rejected",
        "timeouts",
        "service_s_sum",
        "service_sq_s2_sum",
        "load_area",
        "latency_buckets",
        "shadow",
    }
    assert set(rev["shadow"]) == {"sent", "agreed", "disagreed", "failed", "dropped"}
