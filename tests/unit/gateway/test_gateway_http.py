"""Request targets and the responses the gateway writes."""

from __future__ import annotations

import pytest

from modelyard.gateway._http import (
    error_response,
    proxied_response,
    response_bytes,
    split_target,
)


@pytest.mark.parametrize(
    ("target", "name", "rest"),
    [
        (b"/churn/v2/models/m/infer", b"churn", b"/v2/models/m/infer"),
        (b"/churn/invocations?x=1&y=2", b"churn", b"/invocations?x=1&y=2"),
        (b"/churn", b"churn", b"/"),
        (b"/churn/", b"churn", b"/"),
        (b"/churn?x=1", b"churn", b"/?x=1"),
        (b"/churn?next=/a/b", b"churn", b"/?next=/a/b"),
        (b"/", b"", b"/"),
    ],
)
def test_split_target_strips_the_deployment(target: bytes, name: bytes, rest: bytes) -> None:
    assert split_target(target) == (name, rest)


def test_response_bytes_frames_the_body() -> None:
    data = response_bytes(201, b"abc", b"x-a: 1\r\n")
    assert data == b"HTTP/1.1 201 Created\r\nx-a: 1\r\ncontent-length: 3\r\n\r\nabc"
    head = response_bytes(200, b"abc", close=True, head=True)
    assert head == b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\n"


def test_503_carries_retry_after() -> None:
    data = error_response(503, "busy")
    assert b"retry-after: 1\r\n" in data
    assert data.endswith(b'\r\n\r\n{"error":"busy"}')
    assert b"retry-after" not in error_response(504, "late")


def test_proxied_response_drops_hop_by_hop_and_recomputes_length() -> None:
    headers = [
        (b"Content-Type", b"application/json"),
        (b"Content-Length", b"999"),
        (b"Connection", b"keep-alive"),
        (b"Transfer-Encoding", b"chunked"),
        (b"X-Kept", b"yes"),
    ]
    tag = b"x-modelyard-revision: 2\r\nx-modelyard-replica: r-1\r\n"
    data = proxied_response(200, headers, b"{}", tag, close=False, head=False)
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert set(lines[1:]) == {
        b"Content-Type: application/json",
        b"X-Kept: yes",
        b"x-modelyard-revision: 2",
        b"x-modelyard-replica: r-1",
        b"content-length: 2",
    }
    assert body == b"{}"


def test_proxied_head_response_keeps_the_upstream_length() -> None:
    data = proxied_response(200, [(b"content-length", b"42")], b"", b"", close=False, head=True)
    assert data == b"HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n"
