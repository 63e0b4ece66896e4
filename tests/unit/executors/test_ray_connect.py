"""``_connect``: a Ray Client session that fails to start is tried again; others are not."""

from __future__ import annotations

from typing import Any

import pytest
import ray

from modelyard.executors import ExecutorUnavailable, _ray


class FlakyInit:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[dict[str, Any]] = []
        self.shutdowns = 0

    def init(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        if len(self.calls) <= self.failures:
            raise ConnectionError("Initialization failure from server")

    def shutdown(self) -> None:
        self.shutdowns += 1


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> Any:
    def make(failures: int) -> FlakyInit:
        fake = FlakyInit(failures)
        monkeypatch.setattr(ray, "init", fake.init)
        monkeypatch.setattr(ray, "shutdown", fake.shutdown)
        monkeypatch.setattr(_ray, "CLIENT_RETRY_DELAY_S", 0.0)
        return fake

    return make


def test_a_client_session_that_failed_to_start_is_tried_again(flaky: Any) -> None:
    fake = flaky(failures=2)
    _ray._connect("ray://127.0.0.1:10001", {"A": "1"})
    assert len(fake.calls) == 3
    assert fake.shutdowns == 2  # each failed init is cleared before the next
    assert fake.calls[-1]["runtime_env"] == {"env_vars": {"A": "1"}}


def test_a_client_that_never_connects_is_unavailable_after_the_tries(flaky: Any) -> None:
    fake = flaky(failures=10)
    with pytest.raises(ExecutorUnavailable, match=r"ray://127\.0\.0\.1:10001 does not answer"):
        _ray._connect("ray://127.0.0.1:10001", {})
    assert len(fake.calls) == _ray.CLIENT_CONNECT_TRIES


def test_a_cluster_address_is_not_retried(flaky: Any) -> None:
    fake = flaky(failures=1)
    with pytest.raises(ExecutorUnavailable):
        _ray._connect("127.0.0.1:6379", {})
    assert len(fake.calls) == 1
