"""Alert evaluation: the state machine, hysteresis, no data, silences; Hypothesis invariants."""

from __future__ import annotations

import json
import math

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from modelyard.core.clock import FakeClock
from modelyard.core.errors import InvalidInput
from modelyard.monitor._alerting import (
    AlertState,
    Silence,
    Transition,
    is_healthy,
    replay,
    silenced,
    step,
)
from modelyard.monitor.rules import OPS, AlertRule, Op, parse_rule

P99 = parse_rule("p99_ms > 50 for 2m")


def run(
    rule: AlertRule,
    samples: list[tuple[float, float | None]],
    *,
    hysteresis: float = 0.1,
    keep_firing_s: float = 0.0,
) -> tuple[AlertState, list[Transition]]:
    return replay(rule, samples, hysteresis=hysteresis, keep_firing_s=keep_firing_s)


def path(transitions: list[Transition]) -> list[tuple[str, str, float]]:
    return [(t.from_state, t.to_state, t.at_s) for t in transitions]


# --- the state machine ---------------------------------------------------------------


def test_pending_then_firing_then_resolved_with_hysteresis() -> None:
    state, transitions = run(
        P99,
        [(0, 60.0), (60, 70.0), (119, 55.0), (120, 51.0), (180, 46.0), (240, 45.0)],
    )
    assert path(transitions) == [
        ("inactive", "pending", 0),
        ("pending", "firing", 120),
        ("firing", "resolved", 240),  # 46 is inside the 10 % band (> 45); 45 is out
    ]
    fired, resolved = transitions[1], transitions[2]
    assert fired.rule == "p99_ms > 50 for 2m"
    assert (fired.value, fired.threshold, fired.since_s, fired.notify) == (51.0, 50.0, 0, True)
    assert (resolved.value, resolved.since_s, resolved.notify) == (45.0, 120, True)
    assert not transitions[0].notify
    assert state == AlertState(last_value=45.0, last_eval_s=240, resolved_at_s=240)


def test_a_false_sample_resets_pending() -> None:
    _, transitions = run(P99, [(0, 60.0), (100, 40.0), (110, 60.0), (200, 60.0), (230, 60.0)])
    assert path(transitions) == [
        ("inactive", "pending", 0),
        ("pending", "inactive", 100),
        ("inactive", "pending", 110),
        ("pending", "firing", 230),
    ]
    assert transitions[1].notify is False


def test_no_for_fires_at_once() -> None:
    rule = parse_rule("error_rate >= 0.05")
    state, transitions = run(rule, [(0, 0.01), (10, 0.05)])
    assert path(transitions) == [("inactive", "firing", 10)]
    assert state.status == "firing"
    assert state.fired_at_s == 10


def test_no_data_drops_pending_but_keeps_firing() -> None:
    _, transitions = run(P99, [(0, 60.0), (30, None)])
    assert path(transitions) == [("inactive", "pending", 0), ("pending", "inactive", 30)]
    state, transitions = run(P99, [(0, 60.0), (120, 60.0), (130, None), (9999, math.nan)])
    assert path(transitions)[-1] == ("pending", "firing", 120)
    assert state.status == "firing"
    assert state.last_value is None


def test_keep_firing_needs_healthy_samples_for_that_long() -> None:
    rule = parse_rule("queued > 10")
    samples: list[tuple[float, float | None]] = [
        (0, 20.0),  # fires
        (10, 5.0),  # healthy: wait starts
        (20, 9.5),  # in the band (> 9): wait restarts
        (30, 5.0),  # healthy again
        (40, None),  # no data: wait restarts
        (50, 5.0),
        (105, 5.0),  # 55 s healthy: not yet
        (110, 5.0),  # 60 s: resolves
    ]
    state, transitions = run(rule, samples, keep_firing_s=60.0)
    assert path(transitions) == [("inactive", "firing", 0), ("firing", "resolved", 110)]
    assert state.status == "inactive"


def test_less_than_rules_resolve_above_the_band() -> None:
    rule = parse_rule("accuracy < 0.8")
    _, transitions = run(rule, [(0, 0.7), (1, 0.85), (2, 0.879), (3, 0.9)])
    assert path(transitions) == [("inactive", "firing", 0), ("firing", "resolved", 3)]


@pytest.mark.parametrize("text", ["replicas == 0", "drifted:age != 0", "log_dropped > 0"])
def test_no_band_for_equality_or_zero_threshold(text: str) -> None:
    rule = parse_rule(text)
    fire = 0.0 if rule.op == "==" else 1.0
    clear = 1.0 if rule.op == "==" else 0.0
    _, transitions = run(rule, [(0, fire), (1, clear)])
    assert path(transitions) == [("inactive", "firing", 0), ("firing", "resolved", 1)]


def test_hysteresis_zero_resolves_as_soon_as_false() -> None:
    _, transitions = run(parse_rule("rps > 100"), [(0, 101.0), (1, 100.0)], hysteresis=0.0)
    assert path(transitions)[-1] == ("firing", "resolved", 1)


def test_is_healthy() -> None:
    gt, ge, lt = parse_rule("rps > 100"), parse_rule("rps >= 100"), parse_rule("rps < -10")
    assert not is_healthy(gt, 95.0)
    assert is_healthy(gt, 90.0)
    assert not is_healthy(ge, 100.0)
    assert is_healthy(ge, 90.0)
    assert not is_healthy(lt, -9.5)
    assert is_healthy(lt, -9.0)
    assert not is_healthy(gt, math.nan)


@pytest.mark.parametrize(("hysteresis", "keep"), [(-0.1, 0.0), (1.0, 0.0), (math.nan, 0.0)])
def test_options_are_checked(hysteresis: float, keep: float) -> None:
    with pytest.raises(InvalidInput, match="hysteresis"):
        step(P99, AlertState(), 1.0, 0.0, hysteresis=hysteresis, keep_firing_s=keep)
    with pytest.raises(InvalidInput, match="keep_firing_s"):
        step(P99, AlertState(), 1.0, 0.0, keep_firing_s=-1.0)


def test_a_fake_clock_drives_it() -> None:
    clock = FakeClock()
    state = AlertState()
    seen: list[str] = []
    for value in [60.0, 60.0, 60.0, 60.0, 10.0]:
        state, transition = step(P99, state, value, clock.now())
        if transition is not None:
            seen.append(transition.to_state)
        clock.advance(60)
    assert seen == ["pending", "firing", "resolved"]


def test_state_and_transition_json() -> None:
    state, transitions = run(P99, [(0, 60.0), (120, 60.0), (130, 44.0)], keep_firing_s=30.0)
    assert state.status == "firing"
    assert state.recovering_since_s == 130
    data = json.loads(json.dumps(state.to_json()))
    assert AlertState.from_json(data) == state
    assert AlertState.from_json({}) == AlertState()
    assert json.loads(json.dumps(transitions[-1].to_json()))["to"] == "firing"
    inf_state = AlertState(last_value=math.inf)
    assert inf_state.to_json()["last_value"] is None
    with pytest.raises(InvalidInput, match="unknown status"):
        AlertState.from_json({"status": "exploded"})
    with pytest.raises(InvalidInput, match="fired_at_s"):
        AlertState.from_json({"status": "firing", "fired_at_s": "soon"})


# --- silences ------------------------------------------------------------------------


def test_silences_match_deployment_rule_and_time() -> None:
    everything = Silence("churn-api", None, 100, 200, "deploy window", "ana")
    one_rule = Silence("churn-api", "p99_ms>50 for 120s", 150, 400, "known slow", "bo")
    assert one_rule.rule == "p99_ms > 50 for 2m"
    silences = [everything, one_rule]
    assert silenced(silences, "churn-api", "p99_ms > 50 for 2m", 99) is None
    assert silenced(silences, "churn-api", "error_rate > 0.1", 100) is everything
    assert silenced(silences, "churn-api", "p99_ms > 50 for 2m", 160) is one_rule  # ends last
    assert silenced(silences, "churn-api", "p99_ms  >  50 for 2m", 300) is one_rule
    assert silenced(silences, "churn-api", "error_rate > 0.1", 300) is None
    assert silenced(silences, "fraud", "p99_ms > 50 for 2m", 160) is None
    assert silenced(silences, "churn-api", "p99_ms > 50 for 2m", 400) is None  # end exclusive
    assert silenced(silences, "churn-api", "not a rule", 150) is everything


def test_silence_validation_and_json() -> None:
    with pytest.raises(InvalidInput, match="must be after"):
        Silence("d", None, 10, 10)
    with pytest.raises(InvalidInput, match="deployment"):
        Silence("", None, 0, 10)
    with pytest.raises(InvalidInput, match="unknown metric"):
        Silence("d", "p98_ms > 1", 0, 10)
    with pytest.raises(InvalidInput, match="finite"):
        Silence("d", None, 0, math.inf)
    silence = Silence("d", "rps < 1", 0, 10, "why", "who")
    assert Silence.from_json(json.loads(json.dumps(silence.to_json()))) == silence
    with pytest.raises(InvalidInput, match="missing field"):
        Silence.from_json({"deployment": "d"})


# --- invariants (Hypothesis) ---------------------------------------------------------

THRESHOLDS = st.sampled_from([-100.0, -1.0, 0.0, 0.5, 1.0, 50.0, 1000.0])
FOR_S = st.sampled_from([0.0, 1.0, 5.0, 30.0, 120.0])


@st.composite
def rule_and_samples(
    draw: st.DrawFn,
) -> tuple[AlertRule, list[tuple[float, float | None]]]:
    op = draw(st.sampled_from(OPS))
    threshold = draw(THRESHOLDS)
    rule = AlertRule("rps", None, op, threshold, draw(FOR_S))
    near = st.sampled_from(
        [threshold + d * max(1.0, abs(threshold)) for d in (-0.5, -0.1, -0.05, 0, 0.05, 0.5)]
    )
    values = st.one_of(st.none(), near, st.floats(-2000, 2000))
    steps = draw(
        st.lists(st.tuples(st.floats(0, 60, allow_nan=False), values), min_size=1, max_size=60)
    )
    t = 0.0
    samples: list[tuple[float, float | None]] = []
    for dt, value in steps:
        t += dt
        samples.append((t, value))
    return rule, samples


@settings(max_examples=300, deadline=None)
@given(rule_and_samples())
def test_never_fires_before_for_of_continuous_truth(
    case: tuple[AlertRule, list[tuple[float, float | None]]],
) -> None:
    rule, samples = case
    state = AlertState()
    run_start: float | None = None
    for now_s, value in samples:
        holds = value is not None and rule.holds(value)
        if not holds:
            run_start = None
        elif run_start is None:
            run_start = now_s
        was_firing = state.status == "firing"
        state, transition = step(rule, state, value, now_s)
        if transition is not None and transition.to_state == "firing":
            assert run_start is not None
            assert holds
            assert now_s - run_start >= rule.for_s
            assert transition.since_s == run_start
        if holds and run_start is not None and now_s - run_start >= rule.for_s:
            assert state.status == "firing"  # and it does fire once for_s has passed
        if state.status == "firing" and not was_firing:
            assert transition is not None
            assert transition.to_state == "firing"


@st.composite
def band_case(draw: st.DrawFn) -> tuple[AlertRule, float, list[float | None]]:
    op: Op = draw(st.sampled_from([">", ">=", "<", "<="]))
    threshold = draw(st.sampled_from([-100.0, -1.0, 0.5, 1.0, 50.0, 1000.0]))
    hysteresis = draw(st.sampled_from([0.05, 0.1, 0.3]))
    band = hysteresis * abs(threshold)
    if op in (">", ">="):
        inside = st.floats(threshold - band, threshold + 3 * band, exclude_min=True)
    else:
        inside = st.floats(threshold - 3 * band, threshold + band, exclude_max=True)
    values = draw(st.lists(st.one_of(st.none(), inside), min_size=1, max_size=50))
    return AlertRule("p99_ms", None, op, threshold, 0.0), hysteresis, values


@settings(max_examples=300, deadline=None)
@given(band_case(), st.floats(0, 120))
def test_a_value_inside_the_band_never_resolves(
    case: tuple[AlertRule, float, list[float | None]], keep_firing_s: float
) -> None:
    rule, hysteresis, values = case
    fire = rule.threshold + (1 if rule.op in (">", ">=") else -1) * abs(rule.threshold)
    state, transition = step(rule, AlertState(), fire, 0.0, hysteresis=hysteresis)
    assert state.status == "firing"
    for i, value in enumerate(values, start=1):
        state, transition = step(
            rule, state, value, float(i * 1000), hysteresis=hysteresis, keep_firing_s=keep_firing_s
        )
        assert transition is None
        assert state.status == "firing"


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([">", ">=", "<", "<=", "==", "!="]),
    st.sampled_from([-100.0, -1.0, 0.0, 0.5, 50.0]),
    st.sampled_from([0.0, 0.1, 0.5]),
    st.floats(0, 600),
    st.lists(st.floats(1.0, 30), min_size=1, max_size=40),
)
def test_a_firing_alert_resolves_given_healthy_values_long_enough(
    op: str, threshold: float, hysteresis: float, keep_firing_s: float, dts: list[float]
) -> None:
    rule = parse_rule(f"rps {op} {threshold}")
    band = hysteresis * abs(threshold) + 1.0
    fire, healthy = {
        ">": (threshold + 1, threshold - band),
        ">=": (threshold, threshold - band),
        "<": (threshold - 1, threshold + band),
        "<=": (threshold, threshold + band),
        "==": (threshold, threshold + 1),
        "!=": (threshold + 1, threshold),
    }[op]
    options = {"hysteresis": hysteresis, "keep_firing_s": keep_firing_s}
    state, _ = step(rule, AlertState(), fire, 0.0, **options)
    assert state.status == "firing"
    now, first_healthy = 1.0, 1.0
    gaps = iter(dts * (int(keep_firing_s / sum(dts)) + 2))
    resolved_at = None
    while resolved_at is None:
        state, transition = step(rule, state, healthy, now, **options)
        if transition is not None:
            assert transition.to_state == "resolved"
            resolved_at = now
        else:
            assert now - first_healthy < keep_firing_s
            now += next(gaps)
    assert resolved_at - first_healthy >= keep_firing_s
    assert state.status == "inactive"


@settings(max_examples=200, deadline=None)
@given(rule_and_samples(), st.sampled_from([0.0, 0.1]), st.sampled_from([0.0, 10.0]))
def test_replaying_the_same_samples_gives_the_same_transitions(
    case: tuple[AlertRule, list[tuple[float, float | None]]],
    hysteresis: float,
    keep_firing_s: float,
) -> None:
    rule, samples = case
    first = replay(rule, samples, hysteresis=hysteresis, keep_firing_s=keep_firing_s)
    second = replay(rule, samples, hysteresis=hysteresis, keep_firing_s=keep_firing_s)
    assert first == second
    # Stopping anywhere, storing the state as JSON and resuming changes nothing.
    cut = len(samples) // 2
    head_state, head = replay(
        rule, samples[:cut], hysteresis=hysteresis, keep_firing_s=keep_firing_s
    )
    stored = AlertState.from_json(json.loads(json.dumps(head_state.to_json())))
    tail_state, tail = replay(
        rule, samples[cut:], state=stored, hysteresis=hysteresis, keep_firing_s=keep_firing_s
    )
    assert head + tail == first[1]
    assert tail_state.status == first[0].status
