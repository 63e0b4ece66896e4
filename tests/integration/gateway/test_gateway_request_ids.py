"""Request ids: kept or made, forwarded once, on every answer (errors too), on shadows."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from gateway_harness import GatewayProcess, Upstream, deployment, revision
from recording_upstream import RecordingUpstream

pytestmark = pytest.mark.slow

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def recorders() -> Iterator[tuple[RecordingUpstream, RecordingUpstream]]:
    a, b = RecordingUpstream(), RecordingUpstream()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _route(name: str, upstream: RecordingUpstream, **limits: object) -> dict[str, object]:
    rev = {"revision": 1, "weight": 100, "replicas": [upstream.route(f"{name}-r")]}
    return deployment(name, rev, **limits)


def test_a_caller_id_is_kept_and_a_missing_or_bad_one_replaced(
    gateway: GatewayProcess, recorders: tuple[RecordingUpstream, RecordingUpstream]
) -> None:
    up, _ = recorders
    gateway.push(_route("ids", up))
    sent = [
        ({"x-request-id": "order-42:a.b_c-D"}, "order-42:a.b_c-D"),
        ({"X-Request-ID": "x" * 128}, "x" * 128),  # any case, up to 128 characters
        ({}, None),
        ({"x-request-id": "x" * 129}, None),
        ({"x-request-id": "has space"}, None),
        ({"x-request-id": "semi;colon"}, None),
        ({"x-request-id": ""}, None),
    ]
    with httpx.Client(base_url=gateway.url) as client:
        for i, (headers, kept) in enumerate(sent):
            r = client.post("/ids/predict?echo_id=1", content=b"{}", headers=headers)
            assert r.status_code == 200
            ids = r.headers.get_list("x-request-id")
            assert len(ids) == 1, r.headers  # the replica's echo is not repeated
            if kept is not None:
                assert ids[0] == kept
            else:
                assert GENERATED.fullmatch(ids[0]), ids
            seen = up.wait_seen(i + 1)[i]
            assert seen.one("x-request-id") == ids[0]
            assert not seen.values("x-modelyard-shadow")
        # Two ids from the caller: the first counts, the replica gets one.
        r = client.get("/ids/x", headers=[("x-request-id", "first"), ("x-request-id", "second")])
        assert r.headers.get_list("x-request-id") == ["first"]
        assert up.wait_seen(len(sent) + 1)[-1].values("x-request-id") == ["first"]
        # Generated ids differ.
        many = {client.get("/ids/x").headers["x-request-id"] for _ in range(50)}
        assert len(many) == 50


def test_gateway_errors_carry_the_request_id(
    gateway: GatewayProcess,
    recorders: tuple[RecordingUpstream, RecordingUpstream],
    spawn_upstream: Callable[..., Upstream],
) -> None:
    up, _ = recorders
    breaking = spawn_upstream("ids-break", single_write=True)
    gateway.push(
        _route("ids-slow", up, request_timeout_s=0.2),
        deployment("ids-empty", revision(1, 100), queue_timeout_s=0.1),
        deployment("ids-broken", revision(1, 100, breaking)),
    )
    with httpx.Client(base_url=gateway.url) as client:
        cases = [
            ("/ids-slow/x?delay_s=0.6", 504),  # the replica is too slow
            ("/ids-empty/x", 503),  # no replica becomes ready
            ("/ids-broken/x?break=1", 502),  # the replica hangs up mid-response
            ("/ids-nowhere/x", 404),  # no such deployment
        ]
        for path, status in cases:
            r = client.get(path, headers={"x-request-id": f"err-{status}"})
            assert r.status_code == status, (path, r.text)
            assert r.headers.get_list("x-request-id") == [f"err-{status}"]
            generated = client.get(path)
            assert generated.status_code == status
            assert GENERATED.fullmatch(generated.headers["x-request-id"])
        # A replica's own error is passed on with the id too.
        r = client.get("/ids-slow/x?status=500", headers={"x-request-id": "own-500"})
        assert (r.status_code, r.headers["x-request-id"]) == (500, "own-500")
        # The control API is not a proxied request.
        assert "x-request-id" not in client.get("/-/health").headers


def test_a_too_large_body_is_refused_with_the_request_id() -> None:
    gateway = GatewayProcess("--max-body-bytes", "10")
    try:
        r = httpx.post(
            f"{gateway.url}/any/x", content=b"x" * 100, headers={"x-request-id": "big-one"}
        )
        assert r.status_code == 413
        assert r.headers["x-request-id"] == "big-one"
    finally:
        gateway.close()


def test_shadow_copies_carry_the_id_and_a_shadow_mark(
    gateway: GatewayProcess, recorders: tuple[RecordingUpstream, RecordingUpstream]
) -> None:
    primary, shadow = recorders
    gateway.push(
        deployment(
            "ids-shadowed",
            {"revision": 1, "weight": 100, "replicas": [primary.route("ids-p")]},
            {
                "revision": 2,
                "weight": 0,
                "shadow_percent": 100,
                "replicas": [shadow.route("ids-s")],
            },
        )
    )
    with httpx.Client(base_url=gateway.url) as client:
        # A caller cannot mark its own request as shadow traffic.
        headers = {"x-request-id": "shadowed-1", "x-modelyard-shadow": "1"}
        r = client.post("/ids-shadowed/predict", content=b'{"a": 1}', headers=headers)
        assert r.status_code == 200
        assert r.headers["x-request-id"] == "shadowed-1"
        generated = client.post("/ids-shadowed/predict", content=b"{}").headers["x-request-id"]
    seen_primary = primary.wait_seen(2)
    seen_shadow = shadow.wait_seen(2)
    for seen, rid in zip(seen_primary, ["shadowed-1", generated], strict=True):
        assert seen.one("x-request-id") == rid
        assert not seen.values("x-modelyard-shadow")
    copies = {s.one("x-request-id"): s for s in seen_shadow}
    assert set(copies) == {"shadowed-1", generated}
    copy = copies["shadowed-1"]
    assert copy.one("x-modelyard-shadow") == "1"
    assert (copy.method, copy.path, copy.body) == ("POST", "/predict", b'{"a": 1}')
    assert copy.one("content-length") == "8"
