"""The TCP probe that runs before ``ray.init`` on an explicit address, and address parsing."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import hypothesis.strategies as st
import pytest
from hypothesis import given

from modelyard.core.errors import InvalidInput
from modelyard.executors import ExecutorUnavailable, open_executor
from modelyard.executors._probe import parse_host_port, probe

hosts = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,30}", fullmatch=True) | st.ip_addresses(v=4).map(str)


@given(host=hosts, port=st.integers(1, 65535), scheme=st.sampled_from(["ray://", ""]))
def test_host_and_port_round_trip(host: str, port: int, scheme: str) -> None:
    assert parse_host_port(f"{scheme}{host}:{port}") == (host, port)


@given(port=st.integers(1, 65535))
def test_ipv6_hosts_lose_their_brackets(port: int) -> None:
    assert parse_host_port(f"ray://[::1]:{port}") == ("::1", port)


@given(port=st.integers(65536, 10**6) | st.just(0))
def test_ports_out_of_range_are_rejected(port: int) -> None:
    with pytest.raises(InvalidInput, match="out of range"):
        parse_host_port(f"ray://h:{port}")


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_listening_port_passes(listener: int) -> None:
    probe(f"ray://127.0.0.1:{listener}")


def test_a_port_nobody_listens_on_is_unavailable_and_named(closed_port: int) -> None:
    address = f"ray://127.0.0.1:{closed_port}"
    with pytest.raises(ExecutorUnavailable, match=f"Ray at {address} does not answer: .*refused"):
        probe(address)


def test_an_unroutable_address_gives_up_after_the_timeout() -> None:
    # 192.0.2.0/24 is TEST-NET-1: nothing answers, the connect hangs until the timeout
    # (or the network says unreachable at once, which is just as unavailable).
    started = time.monotonic()
    with pytest.raises(ExecutorUnavailable, match="does not answer"):
        probe("ray://192.0.2.123:10001", timeout_s=0.3)
    assert time.monotonic() - started < 2.0


def test_open_executor_probes_before_ray_is_even_imported(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.delitem(sys.modules, "ray", raising=False)
    started = time.monotonic()
    with pytest.raises(ExecutorUnavailable, match=f"ray://127.0.0.1:{closed_port}"):
        open_executor(f"ray://127.0.0.1:{closed_port}")
    assert time.monotonic() - started < 3.5
    assert "ray" not in sys.modules


def test_ray_with_a_dead_ray_address_env_is_unavailable(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.delitem(sys.modules, "ray", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{closed_port}")
    with pytest.raises(ExecutorUnavailable, match=f"127.0.0.1:{closed_port}"):
        open_executor("ray")
    assert "ray" not in sys.modules
