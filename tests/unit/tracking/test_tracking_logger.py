"""The background logger delivers every item exactly once through failures (no sleeps
beyond its own short backoff; the fake server fails on purpose)."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.core.errors import InvalidInput, ModelyardError, Unavailable
from modelyard.core.tracking import LogBatch
from modelyard.tracking._logger import BatchLogger, is_retryable


class FlakyServer:
    """Applies each batch_id once; fails the first attempts as told (before or after
    applying, like a server that dies before answering)."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = list(failures)
        self.applied: dict[str, LogBatch] = {}
        self.lock = threading.Lock()

    def send(self, run_id: str, batch: LogBatch) -> bool:
        with self.lock:
            mode = self.failures.pop(0) if self.failures else "ok"
            if mode == "before":
                raise Unavailable("connection refused")
            assert batch.batch_id is not None
            fresh = batch.batch_id not in self.applied
            self.applied.setdefault(batch.batch_id, batch)
            if mode == "after":
                raise Unavailable("connection reset after the write")
            return fresh

    def metric_steps(self) -> list[int]:
        return sorted(m.step for b in self.applied.values() for m in b.metrics)


@settings(max_examples=25, deadline=None)
@given(
    failures=st.lists(st.sampled_from(["ok", "before", "after"]), max_size=6),
    n=st.integers(min_value=0, max_value=300),
    max_batch=st.integers(min_value=1, max_value=64),
)
def test_every_metric_lands_exactly_once(failures: list[str], n: int, max_batch: int) -> None:
    server = FlakyServer(failures)
    logger = BatchLogger(
        "run", server.send, flush_interval_s=0.01, max_batch=max_batch, max_backoff_s=0.01
    )
    for step in range(n):
        logger.log_metric("loss", 1.0, step, 0)
    logger.close(timeout_s=30)
    assert server.metric_steps() == list(range(n))


def test_params_conflicts_fail_fast_and_tags_keep_last() -> None:
    server = FlakyServer([])
    logger = BatchLogger("run", server.send, flush_interval_s=0.01)
    logger.log_param("lr", "0.1")
    logger.log_param("lr", "0.1")
    with pytest.raises(InvalidInput, match="immutable"):
        logger.log_param("lr", "0.2")
    logger.set_tag("t", "a")
    logger.set_tag("t", "b")
    logger.close(timeout_s=10)
    tags = [t for b in server.applied.values() for t in b.tags]
    assert tags[-1] == ("t", "b")


def test_rejections_surface_on_flush() -> None:
    def reject(_run: str, _batch: LogBatch) -> bool:
        raise InvalidInput("metric key 'bad key!' is invalid")

    logger = BatchLogger("run", reject, flush_interval_s=0.01)
    logger.log_metric("bad key!", 1.0, 0, 0)
    with pytest.raises(InvalidInput, match="bad key"):
        logger.flush(timeout_s=10)
    logger.close(timeout_s=10)


def test_flush_timeout_reports_what_is_pending() -> None:
    def down(_run: str, _batch: LogBatch) -> bool:
        raise Unavailable("down")

    logger = BatchLogger("run", down, flush_interval_s=0.01, max_backoff_s=0.01)
    logger.log_metric("m", 1.0, 0, 0)
    with pytest.raises(Unavailable, match="1 logged items"):
        logger.flush(timeout_s=0.2)
    with pytest.raises(Unavailable):
        logger.close(timeout_s=0.1)
    assert logger.pending <= 1


def test_which_errors_are_retried() -> None:
    assert is_retryable(Unavailable("x"))
    assert is_retryable(ModelyardError("HTTP 502"))
    assert not is_retryable(InvalidInput("x"))
