"""Holding requests while no replica is ready, wake-up long polls, and timeouts."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from gateway_harness import AUTH, GatewayProcess, Upstream, deployment, revision

pytestmark = pytest.mark.slow


async def _poll_wakeups(client: httpx.AsyncClient, timeout_s: float) -> list[dict[str, object]]:
    r = await client.get(f"/-/wakeups?timeout_s={timeout_s}", headers=AUTH)
    assert r.status_code == 200, r.text
    wake: list[dict[str, object]] = r.json()["wake"]
    return wake


async def _until(gateway: GatewayProcess, name: str, key: str, value: int) -> None:
    await asyncio.to_thread(gateway.wait_for, name, key, value)


def test_held_request_is_released_when_a_replica_appears(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, _, _ = upstreams
    name = "cold"

    async def scenario() -> tuple[list[dict[str, object]], httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            poll = asyncio.create_task(_poll_wakeups(client, 20))
            gateway.push(deployment(name, revision(1, 100), queue_timeout_s=20))
            held = asyncio.create_task(client.post(f"/{name}/predict", content=b"{}"))
            wake = await poll  # the controller hears about it at once
            await _until(gateway, name, "queued", 1)
            gateway.push(deployment(name, revision(1, 100, a), queue_timeout_s=20))
            return wake, await held

    wake, response = asyncio.run(scenario())
    assert wake == [{"deployment": name, "revision": 1, "queued": 1}]
    assert response.status_code == 200
    assert response.headers["x-modelyard-replica"] == "r-a"
    assert response.json()["path"] == "/predict"
    stats = gateway.revision_stats(name)
    assert (stats["arrivals"], stats["completions"], stats["queued"]) == (1, 1, 0)
    assert stats["rejected"] == 0
    assert stats["load_area"] > 0


def test_a_full_queue_answers_503_at_once(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, _, _ = upstreams
    name = "full"

    async def scenario() -> tuple[httpx.Response, list[httpx.Response]]:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            gateway.push(deployment(name, revision(1, 100), queue_limit=2, queue_timeout_s=20))
            held = [asyncio.create_task(client.get(f"/{name}/x")) for _ in range(2)]
            await _until(gateway, name, "queued", 2)
            overflow = await client.get(f"/{name}/x")
            gateway.push(deployment(name, revision(1, 100, a), queue_limit=2))
            return overflow, list(await asyncio.gather(*held))

    overflow, released = asyncio.run(scenario())
    assert overflow.status_code == 503
    assert overflow.headers["retry-after"] == "1"
    assert "waiting" in overflow.json()["error"]
    assert [r.status_code for r in released] == [200, 200]
    stats = gateway.revision_stats(name)
    assert (stats["arrivals"], stats["completions"], stats["rejected"]) == (3, 3, 1)
    assert stats["errors"] == 1


def test_a_request_held_too_long_gets_503(gateway: GatewayProcess) -> None:
    name = "stuck"
    gateway.push(deployment(name, revision(1, 100), queue_timeout_s=0.2))
    r = httpx.get(f"{gateway.url}/{name}/x", timeout=30)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    stats = gateway.revision_stats(name)
    assert (stats["rejected"], stats["errors"], stats["queued"], stats["timeouts"]) == (1, 1, 0, 0)


def test_a_slow_replica_gets_504_and_loses_the_connection(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, _, _ = upstreams
    name = "slow"
    gateway.push(deployment(name, revision(1, 100, a), request_timeout_s=0.3))
    r = httpx.get(f"{gateway.url}/{name}/x?delay_s=5", timeout=30)
    assert r.status_code == 504
    assert "in time" in r.json()["error"]
    assert r.headers["x-modelyard-replica"] == "r-a"
    assert httpx.get(f"{gateway.url}/{name}/x").status_code == 200
    stats = gateway.revision_stats(name)
    assert (stats["timeouts"], stats["errors"], stats["completions"]) == (1, 1, 2)
    assert stats["service_count"] == 1
    replica = gateway.stats()["deployments"][name]["replicas"]["r-a"]
    assert (replica["in_flight"], replica["requests"]) == (0, 2)


def test_every_concurrent_long_poll_hears_a_wakeup(gateway: GatewayProcess) -> None:
    name = "wakes"

    async def scenario() -> tuple[list[list[dict[str, object]]], httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            gateway.push(deployment(name, revision(1, 100), queue_timeout_s=20))
            while await _poll_wakeups(client, 0):
                pass  # signals left over from earlier tests
            polls = [asyncio.create_task(_poll_wakeups(client, 20)) for _ in range(3)]
            await asyncio.sleep(0.1)  # most likely all waiting before the request is held
            held = asyncio.create_task(client.get(f"/{name}/x"))
            # A poll arriving after the first signal still hears the re-signal (1 s later).
            wakes = list(await asyncio.gather(*polls))
            gateway.push()  # the deployment goes away: its held request gets 503
            return wakes, await held

    wakes, held = asyncio.run(scenario())
    assert wakes == [[{"deployment": name, "revision": 1, "queued": 1}]] * 3
    assert held.status_code == 503
    assert "removed" in held.json()["error"]


def test_bad_wakeup_timeout_is_400(gateway: GatewayProcess) -> None:
    r = httpx.get(gateway.url + "/-/wakeups?timeout_s=soon", headers=AUTH)
    assert r.status_code == 400
    assert "timeout_s" in r.json()["error"]
