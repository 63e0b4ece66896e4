"""Budget evaluation: the month, the linear forecast, threshold crossings (pure, with
Hypothesis for the invariants the loop relies on)."""

from __future__ import annotations

from datetime import UTC, datetime

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from modelyard.core.errors import InvalidInput
from modelyard.cost.budget import (
    FORECAST_MIN_PERCENT,
    MIN_FORECAST_ELAPSED_S,
    BudgetState,
    Crossing,
    check_thresholds,
    evaluate,
    forecast,
    month_of,
    threshold_amount,
)

DAY = 86400.0
MARCH = datetime(2026, 3, 1, tzinfo=UTC).timestamp()  # 31 days
FEB = datetime(2026, 2, 1, tzinfo=UTC).timestamp()  # 28 days
DEC = datetime(2025, 12, 1, tzinfo=UTC).timestamp()


def test_months_are_utc_calendar_months() -> None:
    m = month_of(MARCH + 10 * DAY + 5)
    assert (m.key, m.start_s, m.length_s) == ("2026-03", MARCH, 31 * DAY)
    assert month_of(FEB).length_s == 28 * DAY
    assert month_of(MARCH - 1).key == "2026-02"  # the last second of February
    dec = month_of(DEC + 30 * DAY)
    assert (dec.key, dec.end_s) == ("2025-12", datetime(2026, 1, 1, tzinfo=UTC).timestamp())


@given(st.floats(min_value=0, max_value=4e9))
def test_a_time_is_inside_its_month(now_s: float) -> None:
    m = month_of(now_s)
    assert m.start_s <= now_s < m.end_s
    assert 28 * DAY <= m.length_s <= 31 * DAY


def test_forecast_is_linear_on_the_month_to_date_and_none_on_day_one() -> None:
    month = month_of(MARCH)
    assert forecast(10.0, MARCH, month) is None  # the very first instant
    assert forecast(10.0, MARCH + MIN_FORECAST_ELAPSED_S - 1, month) is None
    # 10 days of 31 gone, 100 spent: 310 for the month.
    assert forecast(100.0, MARCH + 10 * DAY, month) == pytest.approx(310.0)
    assert forecast(0.0, MARCH + 10 * DAY, month) == 0.0


def test_thresholds_cross_once_actual_and_forecast() -> None:
    state = BudgetState()
    # Day 10 of March, 104 of 200 spent: 50 % reached; forecast 322.4 >= 100 %.
    ev = evaluate(200, (50, 80, 100), 104.0, MARCH + 10 * DAY, state)
    assert [(c.threshold, c.kind) for c in ev.crossings] == [(50, "actual"), (100, "forecast")]
    assert ev.percent == pytest.approx(52.0)
    assert ev.forecast == pytest.approx(104 * 3.1)
    assert not ev.reset
    # The same inputs again, with the new state: nothing new (idempotent).
    again = evaluate(200, (50, 80, 100), 104.0, MARCH + 10 * DAY, ev.state)
    assert again.crossings == ()
    assert again.state == ev.state
    # More spend: 80 % and 100 % (actual) on later passes, each once.
    later = evaluate(200, (50, 80, 100), 170.0, MARCH + 12 * DAY, ev.state)
    assert [(c.threshold, c.kind) for c in later.crossings] == [(80, "actual")]
    last = evaluate(200, (50, 80, 100), 250.0, MARCH + 13 * DAY, later.state)
    assert [(c.threshold, c.kind) for c in last.crossings] == [(100, "actual")]


def test_forecast_crossings_only_for_thresholds_of_100_percent_and_more() -> None:
    # Forecast 3.1 x 60 = 186 of 100: 50 % and 80 % are not forecast crossings.
    ev = evaluate(100, (50, 80, 150, 200), 60.0, MARCH + 10 * DAY, BudgetState())
    kinds = [(c.threshold, c.kind) for c in ev.crossings]
    assert kinds == [(50, "actual"), (150, "forecast")]


def test_no_forecast_crossing_in_the_first_day() -> None:
    ev = evaluate(100, (100,), 40.0, MARCH + 3600, BudgetState())
    assert ev.forecast is None
    assert ev.crossings == ()


def test_a_new_month_rearms_every_threshold() -> None:
    ev = evaluate(100, (50,), 60.0, FEB + 20 * DAY, BudgetState())
    assert len(ev.crossings) == 1
    march = evaluate(100, (50,), 0.0, MARCH + 60, ev.state)
    assert march.reset
    assert march.state.month == "2026-03"
    assert march.state.crossed == ()
    fired = evaluate(100, (50,), 55.0, MARCH + 2 * DAY, march.state)
    assert [(c.threshold, c.kind) for c in fired.crossings] == [(50, "actual")]


def test_a_new_amount_rearms_too() -> None:
    ev = evaluate(100, (50,), 60.0, MARCH + 5 * DAY, BudgetState())
    raised = evaluate(200, (50,), 60.0, MARCH + 5 * DAY, ev.state)
    assert raised.reset
    assert raised.crossings == ()  # 60 is 30 % of 200
    assert evaluate(200, (50,), 100.0, MARCH + 6 * DAY, raised.state).crossings


@pytest.mark.parametrize(
    ("thresholds", "fragment"),
    [
        ((), "at least one"),
        ((0,), "(0, 1000]"),
        ((-5,), "(0, 1000]"),
        ((1001,), "(0, 1000]"),
        ((float("nan"),), "(0, 1000]"),
        ((80, 50), "increase"),
        ((50, 50), "increase"),
    ],
)
def test_bad_thresholds_are_refused(thresholds: tuple[float, ...], fragment: str) -> None:
    with pytest.raises(InvalidInput, match="alert_at") as info:
        check_thresholds(thresholds)
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("amount", "spent"), [(0, 1.0), (-1, 1.0), (float("inf"), 1.0), (10, -1.0), (10, float("nan"))]
)
def test_bad_amounts_and_spends_are_refused(amount: float, spent: float) -> None:
    with pytest.raises(InvalidInput):
        evaluate(amount, (50,), spent, MARCH + DAY, BudgetState())


def test_state_round_trips_and_garbage_is_a_fresh_state() -> None:
    ev = evaluate(100, (50, 100), 80.0, MARCH + 10 * DAY, BudgetState())
    assert BudgetState.from_json(ev.state.to_json()) == ev.state
    assert BudgetState.from_json({}) == BudgetState()
    assert BudgetState.from_json({"crossed": [{"kind": "nope"}]}) == BudgetState()


# ---- invariants ---------------------------------------------------------------------

thresholds_st = st.lists(
    st.sampled_from([10.0, 25.0, 50.0, 80.0, 90.0, 100.0, 120.0, 150.0, 300.0]),
    min_size=1,
    max_size=5,
    unique=True,
).map(sorted)
# Steps of (seconds later, spend change); times stay within ~3 months.
steps_st = st.lists(
    st.tuples(st.floats(min_value=0, max_value=12 * DAY), st.floats(min_value=-50, max_value=400)),
    min_size=1,
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(
    amount=st.floats(min_value=1, max_value=1e4),
    thresholds=thresholds_st,
    steps=steps_st,
)
def test_each_crossing_notifies_once_per_month_and_never_below_its_threshold(
    amount: float, thresholds: list[float], steps: list[tuple[float, float]]
) -> None:
    now, spent, state = FEB, 0.0, BudgetState()
    seen: set[tuple[str, float, str]] = set()
    for dt, delta in steps:
        before = month_of(now).key
        now += dt
        if month_of(now).key != before:
            spent = 0.0  # the ledger's month to date starts again
        spent = max(0.0, spent + delta)
        ev = evaluate(amount, thresholds, spent, now, state)
        for c in ev.crossings:
            key = (ev.month.key, c.threshold, c.kind)
            assert key not in seen, f"{key} notified twice"
            seen.add(key)
            line = threshold_amount(amount, c.threshold)
            if c.kind == "actual":
                assert c.spent >= line
            else:
                assert c.threshold >= FORECAST_MIN_PERCENT
                assert c.forecast is not None
                assert c.forecast >= line
        # Deterministic, and idempotent: the same inputs with the new state add nothing.
        assert evaluate(amount, thresholds, spent, now, state) == ev
        assert evaluate(amount, thresholds, spent, now, ev.state).crossings == ()
        state = ev.state


@settings(max_examples=200, deadline=None)
@given(
    amount=st.floats(min_value=1, max_value=1e4),
    thresholds=thresholds_st,
    increments=st.lists(st.floats(min_value=0, max_value=5e3), min_size=1, max_size=30),
)
def test_rising_spend_fires_every_threshold_it_passes(
    amount: float, thresholds: list[float], increments: list[float]
) -> None:
    now, spent, state = MARCH, 0.0, BudgetState()
    fired: list[Crossing] = []
    for i, inc in enumerate(increments):
        spent += inc
        ev = evaluate(amount, thresholds, spent, now + i * 3600, state)
        fired.extend(ev.crossings)
        state = ev.state
    actual = {c.threshold for c in fired if c.kind == "actual"}
    passed = {t for t in thresholds if spent >= threshold_amount(amount, t)}
    assert actual == passed
