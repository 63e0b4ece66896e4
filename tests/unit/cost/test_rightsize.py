"""Right-sizing: the documented rule on fixed samples, and its invariants (headroom kept,
the grid and floors respected, savings = (requested - suggested) x price, monotone)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.core.cost_facts import UsageSample
from modelyard.cost import default_catalog
from modelyard.cost._rightsize import (
    CPU_FLOOR,
    CPU_HEADROOM,
    CPU_STEP,
    MEMORY_FLOOR_MB,
    MEMORY_HEADROOM,
    MEMORY_STEP_MB,
    MIN_SAMPLES,
    monthly_saving,
    quantile,
    rightsize,
    round_up,
    suggest,
)
from modelyard.cost.prices import MONTH_S

CATALOG = default_catalog()


def _samples(cores: list[float], rss: list[float], revision: int = 1) -> list[UsageSample]:
    return [
        UsageSample(1, "r", revision, i * 10_000, 10.0, c, m)
        for i, (c, m) in enumerate(zip(cores, rss, strict=True))
    ]


def test_an_oversized_revision_gets_a_smaller_size_and_its_saving() -> None:
    # 100 samples: cores 0.01 .. 1.00; p95 (nearest rank) = 0.95; peak memory 300 MiB.
    cores = [i / 100 for i in range(1, 101)]
    samples = _samples(cores, [300.0] * 100)
    hint = rightsize(
        1,
        samples,
        requested_cpu=4.0,
        requested_memory_mb=2048,
        replicas_avg=2.0,
        catalog=CATALOG,
    )
    assert hint.verdict == "over-provisioned"
    assert hint.cpu_p95 == 0.95
    assert hint.memory_peak_mb == 300.0
    assert hint.suggested_cpu == 1.25  # 0.95 x 1.3 = 1.235 -> 1.25
    assert hint.suggested_memory_mb == 384  # 300 x 1.2 = 360 -> 384
    per_replica_s = 2.75 * CATALOG.cpu_second + (2048 - 384) / 1024 * CATALOG.gib_second
    assert hint.saving_per_month == pytest.approx(per_replica_s * MONTH_S * 2)
    # default (Fargate) prices: (2.75 x 0.04048 + 1.625 x 0.004445) USD/h x 730 h x 2
    assert hint.saving_per_month == pytest.approx(173.0729625)


def test_an_undersized_revision_costs_more_and_says_so() -> None:
    hint = rightsize(
        1,
        _samples([1.9] * 40, [900.0] * 40),
        requested_cpu=1.0,
        requested_memory_mb=512,
        replicas_avg=1.0,
        catalog=CATALOG,
    )
    assert hint.verdict == "under-provisioned"
    assert (hint.suggested_cpu, hint.suggested_memory_mb) == (2.5, 1088)
    assert (hint.saving_per_month or 0) < 0


def test_too_few_samples_is_no_data_and_other_revisions_do_not_count() -> None:
    samples = _samples([0.1] * (MIN_SAMPLES - 1), [100.0] * (MIN_SAMPLES - 1))
    samples += _samples([0.1] * 50, [100.0] * 50, revision=2)
    hint = rightsize(
        1, samples, requested_cpu=1, requested_memory_mb=512, replicas_avg=1, catalog=CATALOG
    )
    assert hint.verdict == "no data"
    assert hint.samples == MIN_SAMPLES - 1
    assert hint.suggested_cpu is None
    assert hint.saving_per_month is None
    assert f"needs {MIN_SAMPLES}" in hint.reason


def test_a_tiny_replica_stays_at_the_floor() -> None:
    assert suggest(0.0, 0.0) == (CPU_FLOOR, MEMORY_FLOOR_MB)
    assert suggest(0.19, 106.0) == (0.25, 128)


def test_round_up_lands_on_the_grid() -> None:
    assert round_up(0.5, 0.25) == 0.5
    assert round_up(0.5000001, 0.25) == 0.75
    assert round_up(0.1 * 3, 0.1) >= 0.1 * 3
    assert quantile([3.0, 1.0, 2.0], 0.95) == 3.0
    assert quantile([5.0], 0.5) == 5.0


_usage = st.floats(0.0, 64.0, allow_nan=False)
_memory = st.floats(0.0, 65536.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(_usage, _memory)
def test_a_suggestion_keeps_the_headroom_on_the_grid(cpu: float, memory: float) -> None:
    s_cpu, s_mem = suggest(cpu, memory)
    assert s_cpu >= cpu * CPU_HEADROOM
    assert s_mem >= memory * MEMORY_HEADROOM
    assert s_cpu >= CPU_FLOOR
    assert s_mem >= MEMORY_FLOOR_MB
    assert (s_cpu / CPU_STEP).is_integer()
    assert s_mem % MEMORY_STEP_MB == 0
    # the smallest such size: one step less would lose the headroom (or the floor)
    assert s_cpu - CPU_STEP < max(cpu * CPU_HEADROOM, CPU_FLOOR)
    assert s_mem - MEMORY_STEP_MB < max(memory * MEMORY_HEADROOM, MEMORY_FLOOR_MB)


@settings(max_examples=300, deadline=None)
@given(_usage, _usage, _memory, _memory)
def test_more_use_never_suggests_less(c1: float, c2: float, m1: float, m2: float) -> None:
    low, high = suggest(min(c1, c2), min(m1, m2)), suggest(max(c1, c2), max(m1, m2))
    assert low[0] <= high[0]
    assert low[1] <= high[1]

    def saving(size: tuple[float, int]) -> float:
        return monthly_saving(CATALOG, requested=(8.0, 16384), suggested=size, replicas_avg=1.0)

    assert saving(low) >= saving(high)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(_usage, _memory), min_size=MIN_SAMPLES, max_size=80),
    st.floats(0.25, 64),
    st.integers(64, 65536),
    st.floats(0, 50),
)
def test_saving_is_the_difference_times_the_price(
    used: list[tuple[float, float]], cpu: float, memory_mb: int, replicas: float
) -> None:
    samples = _samples([c for c, _ in used], [m for _, m in used])
    hint = rightsize(
        1,
        samples,
        requested_cpu=cpu,
        requested_memory_mb=memory_mb,
        replicas_avg=replicas,
        catalog=CATALOG,
    )
    assert hint.suggested_cpu is not None
    assert hint.suggested_memory_mb is not None
    assert hint.suggested_cpu >= (hint.cpu_p95 or 0) * CPU_HEADROOM
    expected = (
        (
            (cpu - hint.suggested_cpu) * CATALOG.cpu_second
            + (memory_mb - hint.suggested_memory_mb) / 1024 * CATALOG.gib_second
        )
        * MONTH_S
        * replicas
    )
    assert hint.saving_per_month == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert (hint.verdict == "right-sized") == (
        (hint.suggested_cpu, hint.suggested_memory_mb) == (cpu, memory_mb)
    )
