"""Pipeline schedules as pure decisions: cron, executor and name checks, and
``plan_fires`` (catch-up once, overlap ``forbid``, nothing in the future), with
Hypothesis for the invariants over arbitrary clocks, downtimes and fire durations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.core.errors import InvalidInput
from modelyard.pipelines.schedules import (
    MISSED_COUNT_LIMIT,
    ScheduleTiming,
    check_cron,
    check_executor,
    check_schedule_name,
    latest_tick,
    next_tick,
    plan_fires,
)

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC).timestamp()  # a Monday, 00:00 UTC
MIN = 60.0
HOUR = 3600.0
DAY = 86400.0


# ---- checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_text", "stored"),
    [
        ("*/5 * * * *", "*/5 * * * *"),
        ("  0   3 * *   MON-FRI ", "0 3 * * MON-FRI"),
        ("@DAILY", "@daily"),
        ("15 2 1 * *", "15 2 1 * *"),
    ],
)
def test_valid_crons_are_normalized(given_text: str, stored: str) -> None:
    assert check_cron(given_text) == stored


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("61 * * * *", "'61 * * * *' is invalid"),
        ("* 24 * * *", "is invalid"),
        ("* * * * * *", "has 6 fields; expected 5"),
        ("* * *", "has 3 fields; expected 5"),
        ("@reboot", "unknown alias '@reboot'"),
        ("   ", "must not be empty"),
        ("0 0 30 2 *", "never matches a date"),
        ("x" * 129, "at most 128 characters"),
    ],
)
def test_invalid_crons_are_refused_naming_the_field(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=r"^cron: ") as raised:
        check_cron(text)
    assert fragment in raised.value.message


@pytest.mark.parametrize(
    "spec", ["local", "ray", "ray://127.0.0.1:10001", "ray://head", "ray://[::1]:1"]
)
def test_known_executors(spec: str) -> None:
    assert check_executor(spec) == spec


@pytest.mark.parametrize("spec", ["dask", "", "ray://", "ray://h:0", "ray://h:70000", "local "])
def test_unknown_executors_are_refused(spec: str) -> None:
    with pytest.raises(InvalidInput, match=r"^executor: unknown executor"):
        check_executor(spec)


@pytest.mark.parametrize("name", ["", "-x", "a/b", "a b", "x" * 65, "..", "é"])
def test_bad_schedule_names(name: str) -> None:
    with pytest.raises(InvalidInput, match=r"^name: "):
        check_schedule_name(name)


def test_good_schedule_names() -> None:
    for name in ("nightly", "train.v2", "a", "A_1-b", "x" * 64):
        assert check_schedule_name(name) == name


# ---- ticks --------------------------------------------------------------------------


def test_next_tick_is_strictly_after_and_latest_tick_is_at_or_before() -> None:
    cron = "*/5 * * * *"
    assert next_tick(cron, T0) == T0 + 5 * MIN
    assert next_tick(cron, T0 - 0.5) == T0
    assert latest_tick(cron, T0) == T0
    assert latest_tick(cron, T0 + 0.5) == T0
    assert latest_tick(cron, T0 - 0.5) == T0 - 5 * MIN
    assert latest_tick("0 3 * * MON-FRI", T0 + 6 * DAY) == T0 + 4 * DAY + 3 * HOUR  # Friday


# ---- plan_fires by example ------------------------------------------------------------


def timing(cron: str = "*/5 * * * *", *, armed: float = T0, **kw: bool) -> ScheduleTiming:
    return ScheduleTiming(cron, kw.get("enabled", True), armed, kw.get("running", False))


def test_nothing_is_due_before_the_first_tick() -> None:
    plan = plan_fires(timing(), None, T0 + 4 * MIN)
    assert (plan.fire_at_s, plan.next_fire_s, plan.reason) == (None, T0 + 5 * MIN, "not due")


def test_a_tick_is_due_at_its_exact_second_and_fires_once() -> None:
    plan = plan_fires(timing(), None, T0 + 5 * MIN)
    assert (plan.fire_at_s, plan.missed, plan.reason) == (T0 + 5 * MIN, 0, "due")
    assert plan.next_fire_s == T0 + 10 * MIN
    # fired at that instant: the same tick is covered now
    again = plan_fires(timing(), T0 + 5 * MIN, T0 + 5 * MIN + 30)
    assert again.fire_at_s is None


def test_the_tick_at_the_arming_instant_never_fires() -> None:
    plan = plan_fires(timing(armed=T0), None, T0 + 1)
    assert plan.fire_at_s is None


def test_after_downtime_the_missed_window_fires_once_for_the_newest_tick() -> None:
    now = T0 + 3 * HOUR + 7 * MIN
    plan = plan_fires(timing(), T0 + 2 * MIN, now)
    assert plan.fire_at_s == T0 + 3 * HOUR + 5 * MIN
    assert plan.missed == 36  # 00:05 … 03:00, folded into the 03:05 fire
    assert plan.reason == "catch-up"
    assert plan.next_fire_s == T0 + 3 * HOUR + 10 * MIN
    assert plan_fires(timing(), now, now).fire_at_s is None  # nothing more to catch up


def test_a_year_of_downtime_counts_missed_ticks_up_to_the_limit() -> None:
    plan = plan_fires(timing("* * * * *"), None, T0 + 365 * DAY)
    assert plan.fire_at_s == T0 + 365 * DAY
    assert plan.missed == MISSED_COUNT_LIMIT


def test_forbid_waits_for_the_running_fire_then_fires_once() -> None:
    running = plan_fires(timing(running=True), T0 + 5 * MIN, T0 + 22 * MIN)
    assert (running.fire_at_s, running.reason) == (None, "running")
    assert running.next_fire_s == T0 + 10 * MIN  # overdue: waits for the running fire
    assert running.missed == 2  # 00:15 and 00:20 wait besides 00:10
    ended = plan_fires(timing(), T0 + 5 * MIN, T0 + 22 * MIN)
    assert (ended.fire_at_s, ended.missed) == (T0 + 20 * MIN, 2)


def test_a_disabled_schedule_never_fires() -> None:
    plan = plan_fires(timing(enabled=False), None, T0 + DAY)
    assert (plan.fire_at_s, plan.next_fire_s, plan.reason) == (None, None, "disabled")


def test_re_arming_skips_what_came_before() -> None:
    plan = plan_fires(
        timing("@hourly", armed=T0 + 5 * HOUR + 30 * MIN), T0, T0 + 5 * HOUR + 40 * MIN
    )
    assert plan.fire_at_s is None
    assert plan.next_fire_s == T0 + 6 * HOUR


def test_a_fire_now_covers_the_ticks_before_it() -> None:
    # a manual fire started at 00:31 covers the 00:30 tick of a half-hourly cron
    plan = plan_fires(timing("*/30 * * * *"), T0 + 31 * MIN, T0 + 45 * MIN)
    assert plan.fire_at_s is None
    assert plan.next_fire_s == T0 + HOUR


# ---- invariants -----------------------------------------------------------------------

CRONS = ["* * * * *", "*/5 * * * *", "7 * * * *", "0 */6 * * *", "30 2 * * MON-FRI", "@daily"]
# gaps between the scheduler's passes: a normal interval, a hiccup, or a long downtime
GAPS = st.one_of(
    st.floats(min_value=0.0, max_value=30.0),
    st.floats(min_value=30.0, max_value=2 * HOUR),
    st.floats(min_value=2 * HOUR, max_value=9 * DAY),
)


@settings(max_examples=150, deadline=None)
@given(
    cron=st.sampled_from(CRONS),
    armed_offset=st.floats(min_value=0.0, max_value=DAY),
    steps=st.lists(st.tuples(GAPS, st.floats(min_value=0.0, max_value=3 * HOUR)), max_size=25),
)
def test_fires_are_never_in_the_future_never_twice_and_catch_up_once(
    cron: str, armed_offset: float, steps: list[tuple[float, float]]
) -> None:
    armed = T0 + armed_offset
    now = armed
    last_fire: float | None = None
    running_until = -1.0
    fired_ticks: list[float] = []
    for gap, duration in steps:
        now += gap
        running = now < running_until
        plan = plan_fires(ScheduleTiming(cron, True, armed, running), last_fire, now)
        if running:
            assert plan.fire_at_s is None
            continue
        if plan.fire_at_s is None:
            assert plan.next_fire_s is not None
            assert plan.next_fire_s > now
            continue
        tick = plan.fire_at_s
        assert tick <= now  # never in the future
        assert tick > armed  # never for a tick before arming
        assert not fired_ticks or tick > fired_ticks[-1]  # never twice for one tick
        assert last_fire is None or tick > last_fire
        assert latest_tick(cron, now) == tick  # stands for the newest due tick
        assert plan.next_fire_s == next_tick(cron, now)
        fired_ticks.append(tick)
        last_fire, running_until = now, now + duration
        # catch-up fires at most once: asked again at once, nothing is due
        assert (
            plan_fires(ScheduleTiming(cron, True, armed, False), last_fire, now).fire_at_s is None
        )
    # nothing is lost: once no fire runs, every tick up to now is covered by a fire
    final = plan_fires(ScheduleTiming(cron, True, armed, False), last_fire, now)
    covered = final.fire_at_s if final.fire_at_s is not None else last_fire
    newest = latest_tick(cron, now)
    if newest > armed:
        assert covered is not None
        assert covered >= newest


@settings(max_examples=100, deadline=None)
@given(
    cron=st.sampled_from(CRONS[:3]),
    since_offset=st.floats(min_value=0.0, max_value=HOUR),
    window=st.floats(min_value=0.0, max_value=5 * HOUR),
)
def test_missed_counts_exactly_the_older_ticks_of_the_window(
    cron: str, since_offset: float, window: float
) -> None:
    since = T0 + since_offset
    now = since + window
    plan = plan_fires(ScheduleTiming(cron, True, since), None, now)
    ticks = []
    tick = next_tick(cron, since)
    while tick <= now:
        ticks.append(tick)
        tick = next_tick(cron, tick)
    if not ticks:
        assert plan.fire_at_s is None
    else:
        assert plan.fire_at_s == ticks[-1]
        assert plan.missed == min(len(ticks) - 1, MISSED_COUNT_LIMIT)
