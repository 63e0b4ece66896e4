"""A gateway process and upstream replicas shared by the gateway integration tests.

Each test routes its own deployment names (stats are cumulative per name) and pushes a
route table holding only those, so tests do not see each other's traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from gateway_harness import GatewayProcess, Upstream


@pytest.fixture(scope="session")
def gateway() -> Iterator[GatewayProcess]:
    proc = GatewayProcess()
    try:
        yield proc
    finally:
        proc.close()


@pytest.fixture(scope="session")
def upstreams() -> Iterator[tuple[Upstream, Upstream, Upstream]]:
    started: list[Upstream] = []
    try:
        for name in ("r-a", "r-b", "r-c"):
            started.append(Upstream(name))
        yield started[0], started[1], started[2]
    finally:
        for upstream in started:
            upstream.close()


@pytest.fixture
def spawn_upstream() -> Iterator[Callable[..., Upstream]]:
    """Start extra upstreams for one test (e.g. to kill them); all stopped afterwards."""
    started: list[Upstream] = []

    def spawn(replica_id: str, *, single_write: bool = False) -> Upstream:
        upstream = Upstream(replica_id, single_write=single_write)
        started.append(upstream)
        return upstream

    try:
        yield spawn
    finally:
        for upstream in started:
            upstream.close()
