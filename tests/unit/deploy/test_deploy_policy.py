"""The policy a deployment runs: Knative's algorithm with the deployment's knobs (Hypothesis)."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from modelyard.autoscale import AutoscaleController, Bounded, KpaCore, Observation
from modelyard.core.clock import FakeClock
from modelyard.core.deployments import ScalingConfig
from modelyard.core.errors import InvalidInput
from modelyard.deploy import deployment_policy

loads = st.lists(st.tuples(st.integers(0, 80), st.integers(0, 40)), min_size=1, max_size=80)
configs = st.builds(
    ScalingConfig,
    min_replicas=st.integers(0, 3),
    max_replicas=st.integers(3, 8),
    target_concurrency=st.floats(0.5, 16),
    idle_grace_s=st.floats(0, 60),
    max_scale_down_rate=st.floats(1, 4),
)


def drive(config: ScalingConfig, steps: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(replicas before, queued, desired) per tick; the deployment obeys at once."""
    policy = deployment_policy(config)
    clock = FakeClock(start_s=0.0)
    replicas = [0]
    now: list[tuple[int, int]] = []

    def observe() -> Observation:
        in_flight, queued = now[0]
        return Observation(replicas[0], replicas[0], in_flight, queued,
                           float(in_flight + queued), in_flight, in_flight)  # fmt: skip

    def apply(n: int) -> None:
        replicas[0] = n

    ctl = AutoscaleController(policy, clock=clock, observe=observe, apply=apply)
    out = []
    for values in steps:
        now[:] = [values]
        before = replicas[0]
        out.append((before, values[1] + values[0], ctl.tick().to_replicas))
        clock.advance(ctl.interval_s)
    return out


@settings(max_examples=60, deadline=None)
@given(config=configs, steps=loads)
def test_desired_within_bounds(config: ScalingConfig, steps: list[tuple[int, int]]) -> None:
    for _, _, desired in drive(config, steps):
        assert config.min_replicas <= desired <= config.max_replicas


@settings(max_examples=60, deadline=None)
@given(config=configs, steps=loads)
def test_never_zero_while_requests_wait(
    config: ScalingConfig, steps: list[tuple[int, int]]
) -> None:
    for _, load, desired in drive(config, steps):
        if load > 0:
            assert desired >= 1


@settings(max_examples=60, deadline=None)
@given(config=configs, steps=loads)
def test_scale_down_never_faster_than_the_rate(
    config: ScalingConfig, steps: list[tuple[int, int]]
) -> None:
    for before, _, desired in drive(config, steps):
        if 0 < desired < before:
            assert desired >= math.floor(before / config.max_scale_down_rate)


def test_kpa_takes_every_knob_from_the_config() -> None:
    config = ScalingConfig(
        target_concurrency=8, stable_window_s=30, panic_window_s=3,
        panic_threshold=3.0, tick_s=1.0, idle_grace_s=12, max_replicas=5,
    )  # fmt: skip
    policy = deployment_policy(config)
    assert isinstance(policy, Bounded)
    assert isinstance(policy.inner, KpaCore)
    core = policy.inner
    assert core.stable_window_s == 30
    assert core.panic_window_pct == 10.0
    assert core.panic_threshold_pct == 300.0
    assert core.tick_s == 1.0
    assert policy.scale_to_zero_grace_s == 12
    assert policy.max_replicas == 5


@pytest.mark.parametrize("name", ["default", "hpa", "ray", "fixed:2"])
def test_other_policies_are_rebounded_to_the_deployment(name: str) -> None:
    policy = deployment_policy(ScalingConfig(policy=name, min_replicas=1, max_replicas=3))
    assert isinstance(policy, Bounded)
    assert (policy.min_replicas, policy.max_replicas) == (1, 3)


def test_bad_configs_name_the_problem() -> None:
    with pytest.raises(InvalidInput, match="min_replicas"):
        ScalingConfig(min_replicas=5, max_replicas=2)
    with pytest.raises(InvalidInput, match="unknown policy"):
        deployment_policy(ScalingConfig(policy="magic"))
    with pytest.raises(InvalidInput, match="unknown scaling setting"):
        ScalingConfig().merged({"colour": "red"})


def test_back_to_zero_within_the_idle_grace_after_load_stops() -> None:
    # A 60 s stable window would hold replicas for a minute; the idle grace does not wait.
    config = ScalingConfig(min_replicas=0, max_replicas=4, target_concurrency=4,
                           idle_grace_s=10, tick_s=2.0)  # fmt: skip
    busy = [(12, 0)] * 15  # 30 s at concurrency 12
    quiet = [(0, 0)] * 10  # then nothing for 20 s
    decided = drive(config, busy + quiet)
    assert decided[len(busy) - 1][2] >= 3
    zero_at = next(i for i, (_, _, d) in enumerate(decided) if i >= len(busy) and d == 0)
    assert (zero_at - len(busy) + 1) * config.tick_s <= config.idle_grace_s + config.tick_s
