"""The pure batching policy, driven by a discrete-event simulation with a fake clock."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.serving import Decision, GapEstimate, LatencyModel, Pending, decide, runs_inline
from modelyard.serving._batching import INLINE_MIN_SAMPLES


@dataclass(eq=False)
class Req(Pending):
    ident: int = 0


@dataclass
class Outcome:
    batches: list[list[Req]] = field(default_factory=list)
    budget_violations: list[str] = field(default_factory=list)


def simulate(
    arrivals: list[tuple[float, int]],
    *,
    max_batch_size: int,
    max_latency_s: float,
    lanes: int,
    a_s: float,
    b_s: float,
) -> Outcome:
    """Run the policy against arrivals (gap after the previous, rows) and a linear cost."""
    requests, t = [], 0.0
    for i, (gap, rows) in enumerate(arrivals):
        t += gap
        requests.append(Req(t, rows, i))
    incoming = deque(requests)
    pending: deque[Req] = deque()
    running: list[tuple[float, int]] = []  # (end time, rows)
    model, gaps = LatencyModel(), GapEstimate()
    out = Outcome()
    now, wake_at = 0.0, None
    for _ in range(100_000):
        for end, rows in [r for r in running if r[0] <= now]:
            running.remove((end, rows))
            model.observe(rows, a_s * rows + b_s)
        while incoming and incoming[0].arrival_s <= now:
            req = incoming.popleft()
            gaps.arrival(req.arrival_s)
            pending.append(req)
        while True:
            d = decide(
                now,
                pending,
                lane_free=len(running) < lanes,
                model=model,
                mean_gap_s=gaps.mean_s,
                max_batch_size=max_batch_size,
                max_latency_s=max_latency_s,
            )
            if not d.take:
                break
            batch = [pending.popleft() for _ in range(d.take)]
            out.batches.append(batch)
            rows = sum(r.rows for r in batch)
            running.append((now + a_s * rows + b_s, rows))
        wake_at = d.wake_at_s
        if pending and len(running) < lanes:
            if wake_at is None:
                out.budget_violations.append(f"waits without a deadline at {now}")
            elif wake_at > pending[0].arrival_s + max_latency_s + 1e-12:
                out.budget_violations.append(f"wakes at {wake_at} past the budget")
        candidates = [e for e, _ in running]
        if incoming:
            candidates.append(incoming[0].arrival_s)
        if wake_at is not None:
            candidates.append(wake_at)
        if not candidates:
            assert not pending, "requests left waiting with nothing to wake the batcher"
            return out
        now = max(now, min(candidates))
    raise AssertionError("the simulation did not finish: the policy livelocks")


arrival_lists = st.lists(st.tuples(st.floats(0, 0.004), st.integers(1, 8)), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    arrivals=arrival_lists,
    max_batch_size=st.integers(8, 32),
    max_latency_s=st.floats(0, 0.02),
    lanes=st.integers(1, 2),
    a_s=st.floats(0, 0.0005),
    b_s=st.floats(0, 0.003),
)
def test_every_request_is_answered_exactly_once_in_order_within_limits(
    arrivals: list[tuple[float, int]],
    max_batch_size: int,
    max_latency_s: float,
    lanes: int,
    a_s: float,
    b_s: float,
) -> None:
    out = simulate(
        arrivals,
        max_batch_size=max_batch_size,
        max_latency_s=max_latency_s,
        lanes=lanes,
        a_s=a_s,
        b_s=b_s,
    )
    released = [r.ident for batch in out.batches for r in batch]
    assert released == list(range(len(arrivals)))  # each once, first come first served
    assert all(sum(r.rows for r in batch) <= max_batch_size for batch in out.batches)
    assert all(batch for batch in out.batches)
    assert out.budget_violations == []


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.integers(1, 10), min_size=1, max_size=40), limit=st.integers(10, 40))
def test_a_full_batch_is_released_at_once(rows: list[int], limit: int) -> None:
    pending = [Pending(0.0, r) for r in rows]
    model = LatencyModel()
    model.observe(1, 0.001)
    d = decide(
        0.0,
        pending,
        lane_free=True,
        model=model,
        mean_gap_s=1e-6,
        max_batch_size=limit,
        max_latency_s=10.0,
    )
    if sum(rows) >= limit:
        assert d.take >= 1
        assert sum(rows[: d.take]) <= limit
        assert d.take == len(rows) or sum(rows[: d.take + 1]) > limit
    else:
        assert d == Decision(0, d.wake_at_s)  # waits: more rows are expected soon


def test_a_lone_closed_loop_caller_is_not_delayed() -> None:
    # Gaps between arrivals longer than the fixed cost b: nothing is worth waiting for.
    model = LatencyModel()
    for rows, t in [(1, 0.0002), (4, 0.0005)]:
        model.observe(rows, t)
    d = decide(
        1.0,
        [Pending(1.0, 1)],
        lane_free=True,
        model=model,
        mean_gap_s=0.001,
        max_batch_size=64,
        max_latency_s=0.005,
    )
    assert d.take == 1


def test_no_wait_while_every_lane_is_busy_and_nothing_without_requests() -> None:
    kwargs = {"model": LatencyModel(), "mean_gap_s": None, "max_batch_size": 4}
    assert decide(0.0, [], lane_free=True, max_latency_s=1.0, **kwargs) == Decision(0, None)  # type: ignore[arg-type]
    busy = decide(0.0, [Pending(0.0, 1)], lane_free=False, max_latency_s=1.0, **kwargs)  # type: ignore[arg-type]
    assert busy == Decision(0, None)


def test_latency_model_recovers_a_linear_cost() -> None:
    model = LatencyModel()
    for rows in [1, 2, 4, 8, 16, 32, 64] * 3:
        model.observe(rows, 0.00002 * rows + 0.001)
    assert model.a == pytest.approx(0.00002, rel=1e-6)
    assert model.b == pytest.approx(0.001, rel=1e-6)
    assert model.predict(10) == pytest.approx(0.0012, rel=1e-6)


def test_latency_model_with_one_batch_size_predicts_the_mean() -> None:
    model = LatencyModel()
    for t in (0.001, 0.003):
        model.observe(1, t)
    assert model.a == 0.0
    assert 0.001 < model.predict(1) < 0.003


def test_gap_estimate_tracks_inter_arrival_time() -> None:
    gaps = GapEstimate()
    assert gaps.mean_s is None
    for i in range(200):
        gaps.arrival(i * 0.002)
    assert gaps.mean_s == pytest.approx(0.002)


@settings(max_examples=200, deadline=None)
@given(
    observed=st.lists(
        st.tuples(st.integers(1, 64), st.floats(0, 0.01, allow_nan=False)), max_size=40
    ),
    rows=st.integers(1, 64),
    threshold=st.floats(0, 0.001, allow_nan=False),
)
def test_a_batch_runs_inline_only_when_expected_short_after_enough_batches(
    observed: list[tuple[int, float]], rows: int, threshold: float
) -> None:
    model = LatencyModel()
    for n, t in observed:
        model.observe(n, t)
    inline = runs_inline(rows, model, threshold)
    if len(observed) < INLINE_MIN_SAMPLES or threshold == 0:
        assert not inline
    else:
        assert inline == (model.predict(rows) <= threshold)


def test_a_fast_model_runs_inline_and_a_slow_one_never() -> None:
    fast, slow = LatencyModel(), LatencyModel()
    for _ in range(INLINE_MIN_SAMPLES):
        fast.observe(32, 10e-6)
        slow.observe(32, 2e-3)
    assert runs_inline(32, fast, 100e-6)
    assert not runs_inline(32, fast, 0.0)  # switched off
    assert not runs_inline(32, slow, 100e-6)
