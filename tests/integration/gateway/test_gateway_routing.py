"""Routing through a real gateway process to real upstream processes."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from gateway_harness import AUTH, GatewayProcess, Upstream, deployment, load, revision

pytestmark = pytest.mark.slow


def test_prefix_is_stripped_and_headers_forwarded(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, _, _ = upstreams
    gateway.push(deployment("strip", revision(1, 100, a)))
    with httpx.Client(base_url=gateway.url) as client:
        r = client.post(
            "/strip/v2/models/m/infer?x=1&y=/z",
            content=b'{"inputs": []}',
            headers={"x-custom": "kept", "proxy-authorization": "dropped", "te": "trailers"},
        )
        assert r.status_code == 200, r.text
        echo = r.json()
        assert (echo["path"], echo["query"], echo["method"]) == (
            "/v2/models/m/infer",
            "x=1&y=/z",
            "POST",
        )
        assert echo["headers"]["x-custom"] == "kept"
        assert echo["headers"]["content-length"] == "14"
        assert "proxy-authorization" not in echo["headers"]
        assert "te" not in echo["headers"]
        assert echo["body_head"] == '{"inputs": []}'
        assert r.headers["x-modelyard-revision"] == "1"
        assert r.headers["x-modelyard-replica"] == "r-a"
        assert r.headers["x-upstream"] == "yes"
        assert r.headers["content-length"] == str(len(r.content))
        assert client.get("/strip").json()["path"] == "/"
        root = client.get("/strip?q=1").json()
        assert (root["path"], root["query"]) == ("/", "q=1")
        assert client.get("/strip/").json()["path"] == "/"


def test_chunked_request_body_is_forwarded_with_a_length(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, _, _ = upstreams
    gateway.push(deployment("chunked", revision(1, 100, a)))

    def chunks() -> Iterator[bytes]:
        yield b"hello "
        yield b"chunked "
        yield b"world"

    r = httpx.post(gateway.url + "/chunked/echo", content=chunks())
    assert r.status_code == 200, r.text
    echo = r.json()
    assert echo["body_head"] == "hello chunked world"
    assert echo["headers"]["content-length"] == "19"
    assert "transfer-encoding" not in echo["headers"]


def test_upstream_error_status_passes_through_and_counts(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, _, _ = upstreams
    gateway.push(deployment("errs", revision(1, 100, a)))
    assert httpx.get(gateway.url + "/errs/x?status=500").status_code == 500
    assert httpx.get(gateway.url + "/errs/x?status=404").status_code == 404
    stats = gateway.revision_stats("errs")
    assert (stats["arrivals"], stats["completions"], stats["errors"]) == (2, 2, 1)


def test_unknown_deployment_is_404(gateway: GatewayProcess) -> None:
    gateway.push()
    r = httpx.get(gateway.url + "/nowhere/v2")
    assert r.status_code == 404
    assert r.json() == {"error": "no deployment named 'nowhere'"}


def test_body_over_8_mib_is_413(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, _, _ = upstreams
    gateway.push(deployment("big", revision(1, 100, a)))
    limit = 8 * 1024 * 1024
    ok = httpx.post(gateway.url + "/big/x", content=b"x" * limit)
    assert ok.status_code == 200
    assert ok.json()["body_bytes"] == limit
    r = httpx.post(gateway.url + "/big/x", content=b"x" * (limit + 1))
    assert r.status_code == 413
    assert "larger than" in r.json()["error"]

    def chunks() -> Iterator[bytes]:
        for _ in range(9):
            yield b"y" * (1024 * 1024)

    assert httpx.post(gateway.url + "/big/x", content=chunks()).status_code == 413


def test_control_api_needs_the_secret(gateway: GatewayProcess) -> None:
    health = httpx.get(gateway.url + "/-/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "secret"}):
        for method, path in (("GET", "/-/stats"), ("PUT", "/-/routes"), ("GET", "/-/wakeups")):
            r = httpx.request(method, gateway.url + path, headers=headers, content=b"{}")
            assert r.status_code == 401, (method, path, headers)
            assert "error" in r.json()
    assert httpx.get(gateway.url + "/-/nope", headers=AUTH).status_code == 404


def test_bad_route_tables_are_400_naming_the_field(gateway: GatewayProcess) -> None:
    version = gateway.push()
    bad = {"version": version + 1, "deployments": [{"name": "x", "revisions": []}]}
    r = httpx.put(gateway.url + "/-/routes", json=bad, headers=AUTH)
    assert r.status_code == 400
    assert r.json()["error"].startswith("deployments[0].revisions")
    r = httpx.put(gateway.url + "/-/routes", content=b"{nope", headers=AUTH)
    assert r.status_code == 400
    older = httpx.put(gateway.url + "/-/routes", json={"version": 0}, headers=AUTH)
    assert older.json() == {"version": version}
    assert httpx.get(gateway.url + "/-/health").json()["routes_version"] == version


def test_pipelined_requests_are_answered_in_order(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, b, _ = upstreams
    gateway.push(deployment("pipe", revision(1, 100, a, b)))
    # The first is the slowest: answers must still come back in request order.
    paths = ["/pipe/first?delay_s=0.3", "/pipe/second", "/pipe/third?delay_s=0.1", "/pipe/fourth"]
    raw = b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while data.count(b"HTTP/1.1 200") < 4 or not data.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    order = [p.split("?")[0].removeprefix("/pipe") for p in paths]
    positions = [data.index(f'"path": "{p}"'.encode()) for p in order]
    assert positions == sorted(positions)


def test_weighted_split_is_roughly_respected(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, b, c = upstreams
    gateway.push(deployment("split", revision(1, 30, a), revision(2, 70, b, c)))
    results = load(gateway.port, "/split/x", total=2000, concurrency=16)
    assert {status for status, _, _ in results} == {200}
    counts = Counter(rev for _, rev, _ in results)
    # Binomial(2000, 0.3): sd ~20.5, so ±120 is a very loose bound.
    assert 480 <= counts["1"] <= 720, counts
    assert counts["1"] + counts["2"] == 2000
    stats = gateway.stats()["deployments"]["split"]
    replicas = stats["replicas"]
    assert replicas["r-a"]["requests"] == counts["1"]
    assert replicas["r-b"]["requests"] + replicas["r-c"]["requests"] == counts["2"]
    # Least outstanding requests spreads revision 2 over both its replicas.
    assert min(replicas["r-b"]["requests"], replicas["r-c"]["requests"]) > counts["2"] // 4
    for number in ("1", "2"):
        rev = stats["revisions"][number]
        assert rev["arrivals"] == rev["completions"] == counts[number]
        assert rev["in_flight"] == rev["queued"] == rev["errors"] == 0
        assert sum(rev["latency_buckets"]) == rev["completions"]
        assert rev["service_count"] == rev["completions"]
        assert rev["load_area"] > 0
        assert rev["service_s_sum"] > 0
        assert rev["service_sq_s2_sum"] > 0


def test_least_outstanding_requests_avoids_the_busy_replica(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, b, _ = upstreams
    gateway.push(deployment("lor", revision(1, 100, a, b)))

    async def scenario() -> list[str]:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            slow = [asyncio.create_task(client.get("/lor/slow?delay_s=1.0")) for _ in range(4)]
            # LOR puts 2 on each replica; while they run, each new request goes to
            # whichever has fewer, so a burst of 6 ends balanced too.
            while gateway.revision_stats("lor")["in_flight"] < 4:
                await asyncio.sleep(0.01)
            replicas = gateway.stats()["deployments"]["lor"]["replicas"]
            assert sorted(r["in_flight"] for r in replicas.values()) == [2, 2]
            done = await asyncio.gather(*slow)
            return [r.headers["x-modelyard-replica"] for r in done]

    served = asyncio.run(scenario())
    assert sorted(served) == ["r-a", "r-a", "r-b", "r-b"]


def test_head_and_expect_100_continue(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, _, _ = upstreams
    gateway.push(deployment("heads", revision(1, 100, a)))
    head = httpx.head(gateway.url + "/heads/x")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["x-modelyard-replica"] == "r-a"
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(
            b"POST /heads/x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 5\r\n\r\n"
        )
        interim = sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        data = b""
        while not data.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b'"body_head": "hello"' in data
    assert b'"expect"' not in data


def test_a_deep_pipeline_is_answered_completely_and_in_order(
    gateway: GatewayProcess, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, b, c = upstreams
    gateway.push(deployment("deep", revision(1, 100, a, b, c)))
    count = 300  # beyond the 64 unanswered requests at which reading pauses
    raw = b"".join(f"GET /deep/n{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(count))
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(raw)
        data = b""
        while data.count(b'"body_bytes"') < count:
            chunk = sock.recv(1 << 20)
            assert chunk, data[-200:]
            data += chunk
    positions = [data.index(f'"path": "/n{i}"'.encode()) for i in range(count)]
    assert positions == sorted(positions)
    assert data.count(b"HTTP/1.1 200 OK") == count
