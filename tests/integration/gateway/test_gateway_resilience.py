"""Replicas dying under load, retries, and the gateway's own graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from gateway_harness import GatewayProcess, Upstream, deployment, load, revision

pytestmark = pytest.mark.slow


def test_killing_a_replica_under_load_fails_no_request(
    gateway: GatewayProcess, spawn_upstream: Callable[..., Upstream]
) -> None:
    # Single-write replicas: a kill never leaves half a response (that case has its own test).
    doomed = spawn_upstream("r-doomed", single_write=True)
    survivor = spawn_upstream("r-survivor", single_write=True)
    name = "crash"
    gateway.push(deployment(name, revision(1, 100, doomed, survivor)))
    # The route table keeps listing the dead replica: retries alone must cover it.
    results = load(
        gateway.port, f"/{name}/x?delay_s=0.002", 3000, 32, midway=doomed.kill, midway_at=600
    )
    statuses = Counter(status for status, _, _ in results)
    assert statuses == {200: 3000}
    replicas = Counter(replica for _, _, replica in results)
    assert replicas["r-doomed"] > 0
    assert replicas["r-survivor"] > 1000
    stats = gateway.stats()["deployments"][name]
    assert stats["replicas"]["r-doomed"]["failures"] > 0
    rev = stats["revisions"]["1"]
    assert rev["arrivals"] == rev["completions"] == 3000
    assert (rev["errors"], rev["in_flight"], rev["queued"]) == (0, 0, 0)


def test_a_half_sent_response_is_retried_once_then_502(
    gateway: GatewayProcess, spawn_upstream: Callable[..., Upstream]
) -> None:
    first = spawn_upstream("r-half-1", single_write=True)
    second = spawn_upstream("r-half-2", single_write=True)
    name = "halfway"
    gateway.push(deployment(name, revision(1, 100, first, second)))
    r = httpx.post(f"{gateway.url}/{name}/x?break=1", content=b"{}")
    assert r.status_code == 502
    assert "broke off" in r.json()["error"]
    stats = gateway.stats()["deployments"][name]
    replicas = stats["replicas"].values()
    # Nothing reached the caller: one more try on the other replica, which breaks too.
    assert sum(r["requests"] for r in replicas) == 2
    assert sum(r["failures"] for r in replicas) == 2
    assert stats["revisions"]["1"]["errors"] == 1
    assert httpx.get(f"{gateway.url}/{name}/x").status_code == 200


def test_no_replica_left_to_retry_holds_until_one_is_routed(
    gateway: GatewayProcess, spawn_upstream: Callable[..., Upstream]
) -> None:
    dead = spawn_upstream("r-dead")
    dead.kill()
    live = spawn_upstream("r-live")
    name = "allgone"

    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            gateway.push(deployment(name, revision(1, 100, dead), queue_timeout_s=20))
            held = asyncio.create_task(client.get(f"/{name}/x"))
            await asyncio.to_thread(gateway.wait_for, name, "queued", 1)
            gateway.push(deployment(name, revision(1, 100, dead, live), queue_timeout_s=20))
            return await held

    response = asyncio.run(scenario())
    assert response.status_code == 200
    assert response.headers["x-modelyard-replica"] == "r-live"


def test_sigterm_finishes_in_flight_requests_then_exits_0(
    upstreams: tuple[Upstream, Upstream, Upstream],
) -> None:
    a, _, _ = upstreams
    own = GatewayProcess()
    try:
        own.push(deployment("drain", revision(1, 100, a)))

        async def scenario() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=own.url, timeout=30) as client:
                slow = [asyncio.create_task(client.get("/drain/x?delay_s=0.5")) for _ in range(3)]
                await asyncio.to_thread(own.wait_for, "drain", "in_flight", 3)
                own.proc.send_signal(signal.SIGTERM)
                return list(await asyncio.gather(*slow))

        responses = asyncio.run(scenario())
        assert [r.status_code for r in responses] == [200, 200, 200]
        assert own.proc.wait(20) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(own.url + "/-/health")
    finally:
        own.close()


def test_missing_secret_refuses_to_start() -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_GATEWAY_SECRET"}
    done = subprocess.run(
        [sys.executable, "-m", "modelyard.gateway", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "MODELYARD_GATEWAY_SECRET" in done.stderr
