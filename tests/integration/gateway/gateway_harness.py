"""Processes for gateway tests: the gateway itself and tiny upstream replicas.

Both run as subprocesses on free ports and are always stopped (SIGKILL as a last
resort) by the fixtures in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httptools
import httpx

from modelyard.serving._demo import LoggedProcess, free_port

SECRET = "gateway-test-secret"
AUTH = {"Authorization": f"Bearer {SECRET}"}
UPSTREAM_APP = Path(__file__).with_name("upstream_app.py")
_versions = itertools.count(1)


class _Process(LoggedProcess):
    """A test process on a free port (see :class:`LoggedProcess`)."""


class Upstream(_Process):
    """A replica answering JSON with its own id (see ``upstream_app.py``)."""

    def __init__(self, replica_id: str, *, single_write: bool = False) -> None:
        self.id = replica_id
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, str(UPSTREAM_APP), str(self.port), replica_id]
        self._start([*cmd, "--single-write"] if single_write else cmd)
        self._wait_ready(self.url + "/ready", 30.0)

    def close(self) -> None:
        """Killed, not stopped: a test double need not finish its slow requests."""
        self.kill()
        self.log.close()

    def route(self) -> dict[str, object]:
        """Its entry in a route table."""
        return {"id": self.id, "host": "127.0.0.1", "port": self.port}


class GatewayProcess(_Process):
    """``python -m modelyard.gateway`` on a free port."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "modelyard.gateway", "--port", str(self.port), *args]
        self._start(cmd, env={"MODELYARD_GATEWAY_SECRET": SECRET})
        self._wait_ready(self.url + "/-/health", 30.0)

    def push(self, *deployments: dict[str, object]) -> int:
        """Replace the route table (with a fresh, higher version); the version in force."""
        table = {"version": next(_versions), "deployments": list(deployments)}
        r = httpx.put(self.url + "/-/routes", json=table, headers=AUTH)
        assert r.status_code == 200, r.text
        return int(r.json()["version"])

    def stats(self) -> dict[str, Any]:
        r = httpx.get(self.url + "/-/stats", headers=AUTH)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def revision_stats(self, deployment: str, revision: int = 1) -> dict[str, Any]:
        body: dict[str, Any] = self.stats()["deployments"][deployment]["revisions"][str(revision)]
        return body

    def wait_for(
        self, deployment: str, key: str, value: int, revision: int = 1, timeout_s: float = 20.0
    ) -> dict[str, Any]:
        """Poll stats until ``revisions[revision][key] == value`` (fail after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        stats = self.revision_stats(deployment, revision)
        while stats[key] != value:
            if time.monotonic() > deadline:
                raise AssertionError(f"{deployment} r{revision} {key}: {stats[key]} != {value}")
            time.sleep(0.01)
            stats = self.revision_stats(deployment, revision)
        return stats


def deployment(name: str, *revisions: dict[str, object], **limits: object) -> dict[str, object]:
    """A route table entry; one revision at weight 100 unless given."""
    return {"name": name, "revisions": list(revisions), **limits}


def revision(
    number: int, weight: int, *replicas: Upstream, shadow_percent: float = 0
) -> dict[str, object]:
    """A revision entry routing to ``replicas``."""
    return {
        "revision": number,
        "weight": weight,
        "shadow_percent": shadow_percent,
        "replicas": [r.route() for r in replicas],
    }


class _Response:
    """Collects one response from ``httptools.HttpResponseParser`` callbacks."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_message_complete(self) -> None:
        self.done = True


async def _fetch(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, dict[bytes, bytes]]:
    response = _Response()
    parser = httptools.HttpResponseParser(response)
    writer.write(request)
    while not response.done:
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("the gateway closed the connection")
        parser.feed_data(data)
    return parser.get_status_code(), response.headers


def load(
    port: int,
    path: str,
    total: int,
    concurrency: int,
    *,
    midway: Callable[[], None] | None = None,
    midway_at: int = 0,
) -> list[tuple[int, str, str]]:
    """Send ``total`` GETs over ``concurrency`` keep-alive connections, fast.

    A raw asyncio client (httpx is too slow to load a gateway on two cores). ``midway``
    is called once, when ``midway_at`` answers are in.

    Returns:
        (status, revision header, replica header) per request; status 0 for a
        transport error (the connection is then reopened).
    """
    request = f"GET {path} HTTP/1.1\r\nHost: gateway\r\n\r\n".encode()
    results: list[tuple[int, str, str]] = []

    async def worker(todo: list[int]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while todo:
                todo.pop()
                try:
                    status, headers = await _fetch(reader, writer, request)
                except (ConnectionError, httptools.HttpParserError):
                    results.append((0, "", ""))
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                revision = headers.get(b"x-modelyard-revision", b"").decode()
                replica = headers.get(b"x-modelyard-replica", b"").decode()
                results.append((status, revision, replica))
                if midway is not None and len(results) == midway_at:
                    midway()
        finally:
            writer.close()

    async def main() -> None:
        todo = list(range(total))
        await asyncio.gather(*(worker(todo) for _ in range(concurrency)))

    asyncio.run(main())
    return results
