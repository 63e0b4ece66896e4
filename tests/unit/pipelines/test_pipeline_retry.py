"""Backoff delays and return-type checks: pure functions."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

import hypothesis.strategies as st
import pytest
from hypothesis import given

from modelyard.core.datasets import DatasetRef
from modelyard.pipelines._retry import (
    MAX_BACKOFF_S,
    backoff_delay_s,
    backoff_delays_s,
    should_retry,
)
from modelyard.pipelines._typecheck import NO_CHECK, matches, mismatch, resolve_return_type


def test_delays_double_from_backoff_s() -> None:
    assert backoff_delays_s(1.0, 4) == [1.0, 2.0, 4.0, 8.0]
    assert backoff_delays_s(0.5, 2) == [0.5, 1.0]
    assert backoff_delays_s(1.0, 0) == []
    assert backoff_delays_s(0.0, 3) == [0.0, 0.0, 0.0]


def test_delays_are_capped_at_a_minute() -> None:
    assert backoff_delays_s(10.0, 5) == [10.0, 20.0, 40.0, 60.0, 60.0]
    assert backoff_delay_s(1.0, 10_000) == MAX_BACKOFF_S
    with pytest.raises(ValueError, match="failed_attempts"):
        backoff_delay_s(1.0, 0)


@given(backoff=st.floats(0, 100), retries=st.integers(0, 50))
def test_delays_never_shrink_and_stay_within_the_cap(backoff: float, retries: int) -> None:
    delays = backoff_delays_s(backoff, retries)
    assert len(delays) == retries
    assert all(0 <= d <= MAX_BACKOFF_S for d in delays)
    assert delays == sorted(delays)


def test_retry_decision() -> None:
    assert should_retry(attempts=1, retries=2, retryable=True)
    assert should_retry(attempts=2, retries=2, retryable=True)
    assert not should_retry(attempts=3, retries=2, retryable=True)  # 1 + 2 retries used
    assert not should_retry(attempts=1, retries=0, retryable=True)
    assert not should_retry(attempts=1, retries=5, retryable=False)  # e.g. a type error


def featurize() -> DatasetRef:
    return DatasetRef("features", 1)


def untyped():  # type: ignore[no-untyped-def]
    return 1


def test_return_types_resolve_and_match() -> None:
    declared = resolve_return_type(featurize)
    assert declared is DatasetRef
    assert resolve_return_type(untyped) is NO_CHECK
    assert (
        mismatch("featurize", {"a": 1}, declared) == "featurize returned dict, declared DatasetRef"
    )
    assert mismatch("featurize", DatasetRef("x"), declared) is None


@pytest.mark.parametrize(
    ("value", "declared", "ok"),
    [
        (1, int, True),
        (True, int, True),
        ("1", int, False),
        (None, type(None), True),
        (0, type(None), False),
        (None, Optional[int], True),  # noqa: UP045 - the typing spelling is what is tested
        (1.5, Union[int, str], False),  # noqa: UP007
        ("a", int | str, True),
        ([1], list[int], True),
        ((1,), list[int], False),
        ({"a": 1}, dict[str, int], True),
        ("b", Literal["a", "b"], True),
        ("c", Literal["a", "b"], False),
        (object(), Any, True),
        (object(), NO_CHECK, True),
    ],
)
def test_shallow_matching(value: object, declared: object, ok: bool) -> None:
    assert matches(value, declared) is ok
