"""The gateway embedded in a test's own event loop (``Gateway.start`` / ``close``)."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest
from gateway_harness import SECRET, Upstream

from modelyard.gateway import Gateway, GatewayOptions, RouteTable
from modelyard.net import listen_socket

pytestmark = pytest.mark.slow


def test_embedded_gateway_routes_and_closes(
    upstreams: tuple[Upstream, Upstream, Upstream],
) -> None:
    a, b, _ = upstreams
    table = RouteTable.from_json(
        {
            "version": 1,
            "deployments": [
                {
                    "name": "inproc",
                    "revisions": [
                        {"revision": 1, "weight": 50, "replicas": [a.route()]},
                        {"revision": 2, "weight": 50, "replicas": [b.route()]},
                    ],
                }
            ],
        }
    )

    async def scenario() -> tuple[list[str], int]:
        gateway = Gateway(GatewayOptions(secret=SECRET), rng=random.Random(7))
        await gateway.start(listen_socket("127.0.0.1", 0, reuse_port=False))
        try:
            assert gateway.apply_routes(table) == 1
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}") as client:
                replies = [await client.get("/inproc/x") for _ in range(40)]
            return [r.headers["x-modelyard-replica"] for r in replies], gateway.port
        finally:
            await gateway.close(grace_s=5)

    replicas, port = asyncio.run(scenario())
    assert set(replicas) == {"r-a", "r-b"}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/-/health")
