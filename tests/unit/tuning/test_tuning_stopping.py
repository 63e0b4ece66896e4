"""Early stopping and fail-fast decisions: pure functions of the history and the time."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given

from modelyard.tuning._stopping import (
    Finished,
    StopRules,
    best_value,
    fail_fast,
    stop_reason,
    trials_since_improvement,
)


def done(*values: float | None) -> list[Finished]:
    """COMPLETE trials with these values; None stands for a FAIL."""
    return [
        Finished("FAIL", error="boom") if v is None else Finished("COMPLETE", v) for v in values
    ]


def test_patience_counts_finished_trials_since_the_last_improvement() -> None:
    rules = StopRules(mode="min", patience=3)
    assert stop_reason(done(5, 4, 6, 7), rules, 0) is None
    assert stop_reason(done(5, 4, 6, 7, 4.5), rules, 0) == (
        "patience: 3 finished trials without improvement"
    )
    assert stop_reason(done(5, 4, 6, 7, 3), rules, 0) is None  # improved on the last one
    pruned = [*done(5), Finished("PRUNED", 9.0), Finished("PRUNED", 9.0), Finished("FAIL")]
    assert stop_reason(pruned, rules, 0) is not None


def test_patience_in_max_mode_and_equal_values_do_not_improve() -> None:
    assert trials_since_improvement(done(1, 2, 2, 2), "max") == 2
    assert trials_since_improvement(done(1, 2, 2, 2), "min") == 3


def test_target_stops_once_reached_in_either_mode() -> None:
    assert stop_reason(done(0.5, 0.8), StopRules(mode="max", target=0.9), 0) is None
    reason = stop_reason(done(0.5, 0.95), StopRules(mode="max", target=0.9), 0)
    assert reason is not None
    assert reason.startswith("target reached")
    assert stop_reason(done(0.5), StopRules(mode="min", target=0.5), 0) is not None
    assert stop_reason(done(0.6), StopRules(mode="min", target=0.5), 0) is None


def test_timeout_uses_the_elapsed_time_given() -> None:
    rules = StopRules(timeout_s=10)
    assert stop_reason([], rules, 9.99) is None
    reason = stop_reason([], rules, 10.0)
    assert reason is not None
    assert reason.startswith("timeout")


def test_fail_fast_only_when_the_first_three_all_failed() -> None:
    assert fail_fast(done(None, None)) is None
    assert fail_fast(done(None, 1.0, None, None)) is None
    message = fail_fast([Finished("FAIL", error="KeyError: 'lr'"), *done(None, None), *done(1.0)])
    assert message == "the first 3 trials failed; the first error: KeyError: 'lr'"


histories = st.lists(
    st.one_of(
        st.builds(Finished, st.just("COMPLETE"), st.floats(-100, 100)),
        st.builds(Finished, st.just("PRUNED"), st.floats(-100, 100)),
        st.builds(Finished, st.just("FAIL")),
    ),
    max_size=30,
)
modes = st.sampled_from(["min", "max"])


@given(histories, modes, st.integers(1, 10))
def test_patience_stops_exactly_when_the_last_n_did_not_improve(
    history: list[Finished], mode: str, patience: int
) -> None:
    stopped = stop_reason(history, StopRules(mode=mode, patience=patience), 0.0) is not None
    before = best_value(history[:-patience], mode) if len(history) >= patience else None
    after = best_value(history, mode)
    completed_at_all = after is not None
    no_improvement = len(history) >= patience and before == after
    if completed_at_all:
        assert stopped == no_improvement
    else:
        assert stopped == (len(history) >= patience)


@given(histories, modes, st.floats(-100, 100), st.lists(st.floats(-100, 100), max_size=5))
def test_a_reached_target_stays_reached(
    history: list[Finished], mode: str, target: float, more: list[float]
) -> None:
    rules = StopRules(mode=mode, target=target)
    if stop_reason(history, rules, 0.0) is not None:
        assert stop_reason(history + done(*more), rules, 0.0) is not None


@given(histories, modes)
def test_no_rule_never_stops(history: list[Finished], mode: str) -> None:
    assert stop_reason(history, StopRules(mode=mode), 1e9) is None


@given(histories, modes)
def test_the_best_value_is_the_best_complete_value(history: list[Finished], mode: str) -> None:
    values = [t.value for t in history if t.state == "COMPLETE" and t.value is not None]
    best = best_value(history, mode)
    if not values:
        assert best is None
    else:
        assert best == (max(values) if mode == "max" else min(values))
