"""Invariants every policy keeps, for any load (Hypothesis)."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import numpy as np
from hypothesis import given, settings

from modelyard.autoscale import (
    AutoscaleController,
    Bounded,
    Observation,
    PolicySettings,
    SimConfig,
    build_policy,
    simulate,
)
from modelyard.core.clock import FakeClock

POLICIES = ["default", "hpa", "kpa", "ray", "oracle", "fixed:3"]
SETTINGS = PolicySettings(
    target_concurrency=4, slo_s=0.25, slo_includes_service=True, cold_start_s=2.0, max_replicas=7
)

loads = st.lists(
    st.tuples(
        st.integers(0, 60),  # in flight
        st.integers(0, 200),  # queued
        st.integers(0, 500),  # arrivals since last tick
        st.integers(0, 40),  # peak demand ahead (oracle only)
    ),
    min_size=1,
    max_size=60,
)


def drive(name: str, steps: list[tuple[int, int, int, int]], min_replicas: int = 0) -> list[int]:
    """Run a controller over synthetic observations; the 'deployment' obeys every decision."""
    policy: Any = build_policy(name, SETTINGS)
    if min_replicas:
        policy = Bounded(policy.inner, min_replicas=min_replicas, max_replicas=7)
    clock = FakeClock(start_s=0.0)
    replicas = [0]
    step = iter(steps)
    current: list[tuple[int, int, int, int]] = []

    def observe() -> Observation:
        in_flight, queued, arrivals, _ = current[0]
        ready = replicas[0]
        return Observation(
            replicas[0],
            ready,
            min(in_flight, 4 * ready),
            queued,
            float(in_flight + queued),
            arrivals,
            arrivals // 2,
            0.04 * (arrivals // 2),
            0.0016 * (arrivals // 2),
        )

    def apply(n: int) -> None:
        replicas[0] = n

    controller = AutoscaleController(
        policy,
        clock=clock,
        observe=observe,
        apply=apply,
        foresight=lambda now, horizon: current[0][3],
    )
    decided = []
    for values in step:
        current[:] = [values]
        decided.append(controller.tick().to_replicas)
        clock.advance(controller.interval_s)
    return decided


@settings(max_examples=40, deadline=None)
@given(steps=loads, which=st.sampled_from(POLICIES))
def test_desired_stays_within_bounds(steps: list[tuple[int, int, int, int]], which: str) -> None:
    for desired in drive(which, steps):
        assert 0 <= desired <= SETTINGS.max_replicas


@settings(max_examples=40, deadline=None)
@given(steps=loads, which=st.sampled_from(POLICIES), floor=st.integers(1, 7))
def test_min_replicas_is_respected(
    steps: list[tuple[int, int, int, int]], which: str, floor: int
) -> None:
    for desired in drive(which, steps, min_replicas=floor):
        assert floor <= desired <= 7


@settings(max_examples=40, deadline=None)
@given(steps=loads, which=st.sampled_from(POLICIES))
def test_never_zero_while_requests_wait(steps: list[tuple[int, int, int, int]], which: str) -> None:
    for (in_flight, queued, _, _), desired in zip(steps, drive(which, steps), strict=True):
        if in_flight or queued:
            assert desired >= 1


@settings(max_examples=25, deadline=None)
@given(steps=loads, which=st.sampled_from(POLICIES))
def test_decisions_are_deterministic(steps: list[tuple[int, int, int, int]], which: str) -> None:
    assert drive(which, steps) == drive(which, steps)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    rate=st.floats(0.5, 80.0),
    which=st.sampled_from(POLICIES),
)
def test_simulation_is_deterministic_and_serves_everything(
    seed: int, rate: float, which: str
) -> None:
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, size=300))
    service = rng.lognormal(np.log(0.05), 0.5, size=300)
    config = SimConfig(4, 2.0, queue_limit=10_000)
    first = simulate(build_policy(which, SETTINGS), arrivals, service, config)
    second = simulate(build_policy(which, SETTINGS), arrivals, service, config)
    assert np.array_equal(first.finish_s, second.finish_s, equal_nan=True)
    assert first.replica_seconds == second.replica_seconds
    assert first.dropped == 0
    assert np.all(first.finish_s - first.start_s >= service - 1e-9)
    assert np.all(first.start_s >= arrivals)
    assert first.max_replicas <= SETTINGS.max_replicas
