"""Rollout steps as a pure function: canary analysis, rollback, rolling replacement."""

from __future__ import annotations

from dataclasses import replace

import hypothesis.strategies as st
from hypothesis import given, settings

from modelyard.core.deployments import Rollout
from modelyard.deploy import RolloutView, WindowStats, advance, judge

CANARY = Rollout(strategy="canary", target=2, stable=1, steps=(10, 50, 100), step_interval_s=60)


def view(now_s: float, **kw: object) -> RolloutView:
    base: dict[str, object] = {
        "now_ms": int(now_s * 1000),
        "target_state": "ready",
        "target_error": "",
        "target_ready": 1,
        "stable_ready": 2,
    }
    base.update(kw)
    return RolloutView(**base)  # type: ignore[arg-type]


def good(n: int = 1000) -> WindowStats:
    return WindowStats(requests=n, errors=0, p99_s=0.010)


def test_canary_waits_for_the_target_then_walks_the_steps_and_promotes() -> None:
    step = advance(CANARY, view(0, target_ready=0))
    assert step.weights is None
    assert step.rollout.phase == "starting"
    step = advance(CANARY, view(1))
    assert step.weights == {2: 10, 1: 90}
    assert step.rollout.phase == "stepping"
    ro = step.rollout
    assert advance(ro, view(30, canary=good(), stable=good())).weights is None  # mid-step
    step = advance(ro, view(61, canary=good(), stable=good()))
    assert step.weights == {2: 50, 1: 50}
    assert step.reset_window
    step = advance(step.rollout, view(122, canary=good(), stable=good()))
    assert step.weights == {2: 100}
    assert step.promote
    assert step.rollout.phase == "done"
    assert step.message is not None
    assert "promoted" in step.message


def test_canary_rolls_back_on_error_rate() -> None:
    ro = advance(CANARY, view(0)).rollout
    bad = WindowStats(requests=100, errors=5, p99_s=0.01)
    step = advance(ro, view(61, canary=bad, stable=good()))
    assert step.weights == {1: 100}
    assert step.rollout.phase == "rolled_back"
    assert step.message is not None
    assert "error rate" in step.message
    assert not step.promote


def test_canary_rolls_back_on_p99_ratio_but_not_on_jitter() -> None:
    ro = advance(CANARY, view(0)).rollout
    slow = WindowStats(requests=100, errors=0, p99_s=0.050)
    step = advance(ro, view(61, canary=slow, stable=good()))
    assert step.rollout.phase == "rolled_back"
    assert "p99" in (step.message or "")
    # 1.8x of a sub-millisecond p99 is jitter, not a regression.
    jitter = WindowStats(requests=100, errors=0, p99_s=0.0009)
    fast = WindowStats(requests=100, errors=0, p99_s=0.0005)
    assert advance(ro, view(61, canary=jitter, stable=fast)).rollout.phase == "stepping"


def test_a_p99_gap_within_the_5_ms_allowance_is_jitter_and_beyond_it_a_regression() -> None:
    rollout = CANARY  # max_p99_ratio 1.5
    stable = WindowStats(requests=100, errors=0, p99_s=0.005)
    # The CI case: 7.7 ms against 5.0 ms is over the ratio but only 2.7 ms slower.
    assert judge(WindowStats(requests=100, errors=0, p99_s=0.0077), stable, rollout) is None
    assert judge(WindowStats(requests=100, errors=0, p99_s=0.0099), stable, rollout) is None
    verdict = judge(WindowStats(requests=100, errors=0, p99_s=0.0101), stable, rollout)
    assert verdict is not None
    assert "p99 10.1 ms" in verdict


def test_a_step_without_canary_traffic_is_held_not_judged() -> None:
    ro = advance(CANARY, view(0)).rollout
    step = advance(ro, view(61, canary=WindowStats(), stable=good()))
    assert step.weights is None
    assert step.rollout.step_index == 0
    assert step.rollout.step_started_ms == 61_000
    assert "no requests" in (step.message or "")


def test_a_failed_target_ends_the_rollout_with_its_error() -> None:
    step = advance(CANARY, view(0, target_state="failed", target_error="ValueError: bad pickle"))
    assert step.weights == {1: 100}
    assert step.rollout.phase == "rolled_back"
    assert "bad pickle" in (step.message or "")


def test_inactive_rollouts_do_nothing() -> None:
    done = replace(CANARY, phase="done")
    assert advance(done, view(1000)).rollout is done


def test_rolling_replaces_one_replica_at_a_time() -> None:
    ro = Rollout(strategy="rolling", target=2, stable=1)
    step = advance(ro, view(0, target_ready=1, stable_ready=3))
    assert step.pins == {2: 1, 1: 2}
    assert step.weights == {2: 33, 1: 67}
    ro = step.rollout
    # the stable revision has not drained its replica yet: wait
    assert advance(ro, view(1, target_ready=1, stable_ready=3)).rollout == ro
    step = advance(ro, view(2, target_ready=1, stable_ready=2))
    assert step.pins == {2: 2, 1: 1}
    assert step.weights == {2: 67, 1: 33}
    step = advance(step.rollout, view(3, target_ready=2, stable_ready=1))
    assert step.pins == {2: 3, 1: 0}
    assert step.weights == {2: 100}
    step = advance(step.rollout, view(4, target_ready=3, stable_ready=0))
    assert step.promote
    assert step.rollout.phase == "done"
    assert step.weights == {2: 100}


def test_rolling_from_zero_replicas_promotes_after_one() -> None:
    ro = Rollout(strategy="rolling", target=2, stable=1)
    step = advance(ro, view(0, target_ready=1, stable_ready=0))
    assert step.weights == {2: 100}
    assert advance(step.rollout, view(1, target_ready=1, stable_ready=0)).promote


def test_judge_passes_a_healthy_canary() -> None:
    assert judge(good(), good(), CANARY) is None


stats = st.builds(
    WindowStats,
    requests=st.integers(0, 500),
    errors=st.integers(0, 50),
    p99_s=st.one_of(st.none(), st.floats(0.0001, 5.0)),
)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.tuples(st.floats(0, 200), stats, stats, st.integers(0, 3)), max_size=30),
    strategy=st.sampled_from(["canary", "rolling"]),
)
def test_weights_always_sum_to_100_and_never_name_other_revisions(
    steps: list[tuple[float, WindowStats, WindowStats, int]], strategy: str
) -> None:
    ro = Rollout(strategy=strategy, target=2, stable=1, step_interval_s=30)  # type: ignore[arg-type]
    now = 0.0
    for dt, canary, stable, ready in steps:
        now += dt
        fixed = WindowStats(min(canary.requests, 500), min(canary.errors, canary.requests),
                            canary.p99_s)  # fmt: skip
        step = advance(ro, view(now, canary=fixed, stable=stable, target_ready=ready,
                                stable_ready=3 - ready))  # fmt: skip
        if step.weights is not None:
            assert sum(step.weights.values()) == 100
            assert set(step.weights) <= {1, 2}
            assert all(0 <= w <= 100 for w in step.weights.values())
        if step.promote:
            assert step.weights == {2: 100}
        ro = step.rollout
