"""Latency histograms and the exact load integral."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.gateway import LATENCY_BUCKETS_S, diff_buckets, quantile_from_buckets
from modelyard.gateway.stats import RevisionStats, bucket_index

N = len(LATENCY_BUCKETS_S) + 1


def test_buckets_are_log_spaced_from_100us_to_60s() -> None:
    assert LATENCY_BUCKETS_S[0] == 0.0001
    assert LATENCY_BUCKETS_S[-1] == 60.0
    ratios = [b / a for a, b in itertools.pairwise(LATENCY_BUCKETS_S)]
    assert all(1.19 < r < 1.21 for r in ratios), ratios


def test_bucket_index_uses_upper_bounds() -> None:
    assert bucket_index(0.0) == 0
    assert bucket_index(0.0001) == 0
    assert bucket_index(0.00011) == 1
    assert bucket_index(60.0) == N - 2
    assert bucket_index(61.0) == N - 1


def test_quantile_of_empty_histogram_is_none() -> None:
    assert quantile_from_buckets([0] * N, 0.5) is None


def test_quantile_interpolates_within_a_bucket() -> None:
    counts = [0] * N
    counts[10] = 4
    lower, upper = LATENCY_BUCKETS_S[9], LATENCY_BUCKETS_S[10]
    assert quantile_from_buckets(counts, 0.0) == pytest.approx(lower)
    assert quantile_from_buckets(counts, 0.5) == pytest.approx((lower + upper) / 2)
    assert quantile_from_buckets(counts, 1.0) == pytest.approx(upper)


def test_overflow_bucket_answers_60s() -> None:
    counts = [0] * N
    counts[-1] = 3
    assert quantile_from_buckets(counts, 0.99) == 60.0


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="q must be"):
        quantile_from_buckets([0] * N, 1.5)
    with pytest.raises(ValueError, match="counts"):
        quantile_from_buckets([0] * 3, 0.5)
    with pytest.raises(ValueError, match="negative"):
        quantile_from_buckets([-1] + [0] * (N - 1), 0.5)
    with pytest.raises(ValueError, match="counts"):
        diff_buckets([0] * N, [0] * 2)


histograms = st.lists(st.integers(0, 50), min_size=N, max_size=N)


@given(histograms, st.floats(0, 1), st.floats(0, 1))
def test_quantile_is_monotone_in_q(counts: list[int], q1: float, q2: float) -> None:
    low, high = sorted((q1, q2))
    a = quantile_from_buckets(counts, low)
    b = quantile_from_buckets(counts, high)
    if sum(counts) == 0:
        assert a is None
        assert b is None
    else:
        assert a is not None
        assert b is not None
        assert a <= b + 1e-12


@given(histograms, st.floats(0, 1))
def test_quantile_lies_within_non_empty_buckets(counts: list[int], q: float) -> None:
    value = quantile_from_buckets(counts, q)
    if value is None:
        return
    filled = [i for i, c in enumerate(counts) if c]
    low = LATENCY_BUCKETS_S[filled[0] - 1] if filled[0] else 0.0
    high = LATENCY_BUCKETS_S[min(filled[-1], N - 2)]
    assert low - 1e-12 <= value <= high + 1e-12
    inside = any(
        (LATENCY_BUCKETS_S[i - 1] if i else 0.0) - 1e-12
        <= value
        <= LATENCY_BUCKETS_S[min(i, N - 2)] + 1e-12
        for i in filled
    )
    assert inside


@given(histograms, histograms)
def test_diff_undoes_addition(old: list[int], extra: list[int]) -> None:
    new = [a + b for a, b in zip(old, extra, strict=True)]
    assert diff_buckets(new, old) == extra


def test_diff_after_a_restart_is_the_new_histogram() -> None:
    old = [5] * N
    new = [1] * N
    assert diff_buckets(new, old) == new


def test_load_area_integrates_in_flight_plus_queued_exactly() -> None:
    stats = RevisionStats(now_s=100.0)
    stats.add_in_flight(1, 100.0)  # 1 from 100
    stats.add_queued(2, 101.0)  # 3 from 101
    stats.add_in_flight(-1, 103.0)  # 2 from 103
    stats.add_queued(-2, 104.5)  # 0 from 104.5
    assert stats.load_area == pytest.approx(1 * 1 + 3 * 2 + 2 * 1.5)
    body = stats.to_json(110.0)
    assert body["load_area"] == pytest.approx(10.0)
    assert stats.idle


def test_to_json_accrues_the_open_interval() -> None:
    stats = RevisionStats(now_s=0.0)
    stats.add_in_flight(4, 0.0)
    assert stats.to_json(2.5)["load_area"] == pytest.approx(10.0)
    assert stats.to_json(3.0)["load_area"] == pytest.approx(12.0)


def test_completion_counts_errors_and_latency() -> None:
    stats = RevisionStats(now_s=0.0)
    stats.complete(200, 0.002)
    stats.complete(503, 0.5)
    stats.observe_service(0.001)
    stats.observe_service(0.003)
    body = stats.to_json(1.0)
    assert (body["completions"], body["errors"]) == (2, 1)
    buckets = body["latency_buckets"]
    assert isinstance(buckets, list)
    assert sum(buckets) == 2
    assert buckets[bucket_index(0.002)] == 1
    assert body["service_s_sum"] == pytest.approx(0.004)
    assert body["service_sq_s2_sum"] == pytest.approx(1e-5)
    assert not math.isnan(float(str(body["service_s_sum"])))
