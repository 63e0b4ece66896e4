"""Each policy does what its documentation says, decision by decision."""

from __future__ import annotations

import math

import pytest

from modelyard.autoscale import (
    Bounded,
    DefaultCore,
    HpaCore,
    KpaCore,
    Observation,
    OracleCore,
    RayCore,
    Sample,
    ScalingContext,
    hpa,
    kpa,
    ray,
)
from modelyard.autoscale._queueing import IdleGapHistogram, slots_for_wait
from modelyard.core.errors import InvalidInput


def context(
    now_s: float,
    *,
    replicas: int = 1,
    ready: int | None = None,
    in_flight: int = 0,
    queued: int = 0,
    mean_concurrency: float | None = None,
    arrivals: int = 0,
    dt_s: float = 1.0,
    history: tuple[Sample, ...] = (),
    peak: int | None = None,
) -> ScalingContext:
    obs = Observation(
        replicas=replicas,
        ready_replicas=replicas if ready is None else ready,
        in_flight=in_flight,
        queued=queued,
        mean_concurrency=float(in_flight + queued)
        if mean_concurrency is None
        else mean_concurrency,
        arrivals=arrivals,
        completions=0,
    )
    sample = Sample(now_s, dt_s, obs)
    return ScalingContext(
        now_s=now_s,
        current_replicas=replicas,
        ready_replicas=obs.ready_replicas,
        sample=sample,
        history=(*history, sample),
        peak_demand_ahead=peak,
    )


def history(concurrency: float, start_s: float, end_s: float, step_s: float) -> tuple[Sample, ...]:
    samples = []
    t = start_s
    while t < end_s - 1e-9:
        samples.append(context(t, mean_concurrency=concurrency, dt_s=step_s).sample)
        t += step_s
    return tuple(samples)


def test_hpa_ignores_changes_within_tolerance_and_scales_by_ratio() -> None:
    core = HpaCore(target_concurrency=10)
    near = core.decide(context(15, replicas=4, mean_concurrency=42, dt_s=15), None)
    assert near.desired_replicas == 4  # ratio 1.05 within 0.1
    far = core.decide(context(15, replicas=4, mean_concurrency=60, dt_s=15), None)
    assert far.desired_replicas == 6
    burst = core.decide(context(15, replicas=2, mean_concurrency=500, dt_s=15), None)
    assert burst.desired_replicas == 6  # default behavior: max(+100 %, +4 pods)


def test_hpa_scale_down_waits_for_the_stabilization_window() -> None:
    policy = hpa(target_concurrency=1)
    state = policy.initial_state()
    decision = policy.decide(context(0, replicas=8, mean_concurrency=8, dt_s=15), state)
    assert decision.desired_replicas == 8
    t = 15.0
    while t < 300:
        decision = policy.decide(
            context(t, replicas=8, mean_concurrency=1, dt_s=15), decision.state
        )
        assert decision.desired_replicas == 8, t
        t += 15
    decision = policy.decide(context(315, replicas=8, mean_concurrency=1, dt_s=15), decision.state)
    assert decision.desired_replicas == 1


def test_kpa_panics_on_a_burst_and_does_not_scale_down_while_panicking() -> None:
    core = KpaCore(target_concurrency=10)  # 7 per pod at 70 %
    calm = history(7.0, 0, 54, 2)
    burst = core.decide(
        context(54, replicas=1, mean_concurrency=70, history=calm, dt_s=2), core.initial_state()
    )
    # Panic window (6 s: 7, 7, 70) averages 28 -> 4 pods; the stable window would say 2.
    assert burst.desired_replicas == 4
    assert "panic" in burst.reason
    after = core.decide(context(56, replicas=4, mean_concurrency=1, dt_s=2), burst.state)
    assert after.desired_replicas == 4


def test_kpa_scales_to_zero_only_after_the_grace_period() -> None:
    policy = kpa(target_concurrency=10)
    state = policy.initial_state()
    for t in range(0, 30, 2):
        decision = policy.decide(context(t, replicas=1, mean_concurrency=0), state)
        state = decision.state
        assert decision.desired_replicas == 1
    assert policy.decide(context(30, replicas=1), state).desired_replicas == 0


def test_kpa_scale_down_rate_is_at_most_half() -> None:
    core = KpaCore(target_concurrency=10)
    decision = core.decide(context(0, replicas=8, mean_concurrency=0.1), core.initial_state())
    assert decision.desired_replicas == 4


def test_ray_applies_scale_up_only_after_the_upscale_delay() -> None:
    policy = ray(target_ongoing_requests=2)
    state = policy.initial_state()
    for t in (0, 10, 20):
        decision = policy.decide(context(t, replicas=1, mean_concurrency=10, dt_s=10), state)
        state = decision.state
        assert decision.desired_replicas == 1
    decision = policy.decide(context(30, replicas=1, mean_concurrency=10, dt_s=10), state)
    assert decision.desired_replicas == 5


def test_ray_core_is_ongoing_over_target() -> None:
    assert RayCore(2).decide(context(0, mean_concurrency=7), None).desired_replicas == 4


def test_oracle_follows_the_demand_it_is_shown() -> None:
    core = OracleCore(concurrency_per_replica=4, cold_start_s=2)
    assert core.decide(context(0, peak=9), None).desired_replicas == 3
    assert core.decide(context(0, peak=0), None).desired_replicas == 0
    with pytest.raises(InvalidInput, match="foresight"):
        core.decide(context(0), None)


def test_default_panics_within_one_tick_when_the_backlog_cannot_drain() -> None:
    core = DefaultCore(concurrency_per_replica=4, slo_s=0.25, cold_start_s=2)
    state = core.decide(context(0, replicas=1, arrivals=5), core.initial_state()).state
    decision = core.decide(context(1, replicas=1, in_flight=4, queued=60, arrivals=64), state)
    assert decision.desired_replicas >= math.ceil(64 / 4)
    assert "panic" in decision.reason


def test_default_carries_only_the_load_when_a_cold_start_fits_the_slo() -> None:
    core = DefaultCore(
        concurrency_per_replica=1, slo_s=5.0, cold_start_s=2, slo_includes_service=False
    )
    state = core.initial_state()
    decision = core.decide(context(0, replicas=0, in_flight=0, queued=3, arrivals=3), state)
    assert decision.desired_replicas == 3
    # Idle: the last replica is kept for the ski-rental break-even (one cold start), then goes.
    quiet = core.decide(context(1, replicas=3), decision.state)
    assert quiet.desired_replicas == 3
    later = core.decide(context(4, replicas=3, dt_s=3), quiet.state)
    assert later.desired_replicas == 0


def test_default_keep_alive_follows_the_idle_gap_histogram() -> None:
    core = DefaultCore(concurrency_per_replica=4, slo_s=0.25, cold_start_s=2)
    gaps = IdleGapHistogram()
    for _ in range(50):
        gaps = gaps.add(20.0)  # every idle period so far lasted about 20 s
    keep, _ = core._keep_alive(5.0, gaps, 1)
    assert keep == 0  # the head of the gaps is far away: release, pre-warm later
    warm, _ = core._keep_alive(18.0, gaps, 1)
    assert warm == 1  # pre-warmed a cold start before the 5th percentile
    gone, _ = core._keep_alive(30.0, gaps, 1)
    assert gone == 0  # past the 99th percentile (+10 %)
    few, _ = core._keep_alive(30.0, IdleGapHistogram(), 1)
    assert few == 1  # too few gaps seen: the conservative keep-alive


def test_erlang_sizing_grows_like_the_square_root_of_load() -> None:
    small = slots_for_wait(1.0, 0.0, 1.0, 0.01)
    large = slots_for_wait(100.0, 0.0, 1.0, 0.01)
    assert small >= 2
    assert 100 < large < 100 + 4 * math.sqrt(100)
    assert slots_for_wait(0.0, 1.0, 1.0, 0.01) == 0
    deterministic = slots_for_wait(3.4, 0.21, 0.04, 0.005, service_scv=0.0)
    exponential = slots_for_wait(3.4, 0.21, 0.04, 0.005, service_scv=1.0)
    assert deterministic < exponential


def test_histogram_quantiles_and_forgetting() -> None:
    gaps = IdleGapHistogram(max_total=100)
    for i in range(150):
        gaps = gaps.add(1.0 if i % 2 else 100.0)
    assert gaps.total <= 100
    assert gaps.quantile_s(0.25) < 2.0
    assert 100.0 <= gaps.quantile_s(0.99) < 130.0
    assert math.isinf(IdleGapHistogram().add(10**6).quantile_s(0.5))


def test_bounds_are_validated() -> None:
    with pytest.raises(InvalidInput, match="max_replicas"):
        Bounded(RayCore(1), min_replicas=3, max_replicas=2)
    with pytest.raises(InvalidInput, match="upscale_delay_s"):
        Bounded(RayCore(1), upscale_delay_s=-1)
