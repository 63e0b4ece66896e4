"""The serverless model: warm and cold instances, throttling, time-outs, billing, and
invariants over arbitrary traces (Hypothesis)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from modelyard.autoscale.report import Slo
from modelyard.core.errors import InvalidInput
from modelyard.cost import default_catalog
from modelyard.cost.serverless import (
    SERVED,
    THROTTLED,
    TIMED_OUT,
    ServerlessConfig,
    ServerlessRates,
    ServerlessRun,
    serverless_cost,
    simulate_serverless,
)


def config(**changes: object) -> ServerlessConfig:
    base: dict[str, object] = {
        "memory_gib": 2.0,
        "max_concurrency": 1000,
        "max_execution_s": 900.0,
        "cold_start_s": 1.0,
        "keep_alive_s": 30.0,
    }
    return ServerlessConfig(**{**base, **changes})  # type: ignore[arg-type]


def run(arrivals: Sequence[float], services: Sequence[float], **changes: object) -> ServerlessRun:
    return simulate_serverless(
        np.asarray(arrivals, dtype=np.float64), np.asarray(services, dtype=np.float64),
        config(**changes),
    )  # fmt: skip


def test_warm_instances_are_reused_most_recent_first_and_expire() -> None:
    # Three overlapping requests need three instances; at t=20 all are idle and warm.
    result = run([0.0, 0.5, 1.0, 20.0], [0.1] * 4)
    assert result.cold.tolist() == [True, True, True, False]
    assert result.instance.tolist() == [0, 1, 2, 2]  # the most recently freed (2, at 2.1 s)
    assert result.cold_starts == 3
    start = result.start_s()
    assert (start - result.arrival_s).tolist() == [1.0, 1.0, 1.0, 0.0]
    # With a 10 s keep-alive every instance has expired by t=20: a fourth cold start.
    expired = run([0.0, 0.5, 1.0, 20.0], [0.1] * 4, keep_alive_s=10.0)
    assert expired.cold.tolist() == [True, True, True, True]
    assert expired.instance.tolist() == [0, 1, 2, 3]


def test_a_busy_limit_throttles_and_throttled_requests_are_free() -> None:
    result = run([0.0, 0.0, 0.0, 5.0], [1.0] * 4, max_concurrency=2)
    assert result.outcome.tolist() == [SERVED, SERVED, THROTTLED, SERVED]
    assert result.throttled == 1
    assert result.invocations == 3
    assert result.billed_ms.tolist() == [2000, 2000, 0, 1000]  # cold starts billed
    assert result.instance[2] == -1
    assert np.isnan(result.busy_until_s[2])


def test_a_request_over_the_time_limit_fails_is_billed_the_limit_and_resets_its_instance() -> None:
    result = run([0.0, 10.0], [5.0, 0.2], max_execution_s=2.0)
    assert result.outcome.tolist() == [TIMED_OUT, SERVED]
    assert result.billed_ms.tolist() == [3000, 1200]  # 1 s start-up + 2 s limit
    assert result.cold.tolist() == [True, True]  # the timed-out instance is not reused
    assert result.busy_until_s[0] == 3.0
    sim = result.as_sim_result()
    assert np.isnan(sim.finish_s[0])
    assert sim.dropped == 1


def test_billed_duration_rounds_up_to_the_millisecond() -> None:
    result = run([0.0, 100.0, 200.0, 300.0], [0.04, 0.0401, 0.0, 0.0005], keep_alive_s=1000.0)
    assert result.cold.tolist() == [True, False, False, False]
    assert result.billed_ms.tolist() == [1040, 41, 1, 1]
    unbilled = run([0.0], [0.04], bill_cold_start=False)
    assert unbilled.billed_ms.tolist() == [40]
    assert unbilled.start_s()[0] == 1.0  # the start-up still delays the request


def test_cost_is_requests_plus_gb_seconds_plus_gpu_seconds() -> None:
    result = run(
        [0.0, 0.0, 100.0], [0.5, 1.5, 5.0], max_execution_s=3.0, gpu=1.0, keep_alive_s=200.0
    )
    rates = ServerlessRates(request=0.001, gib_second=0.01, gpu_second=0.1)
    billed_s = (1500 + 2500 + 3000) / 1000  # two cold starts + a warm timed-out run
    assert result.billed_s == billed_s
    expected = 3 * 0.001 + billed_s * 2.0 * 0.01 + billed_s * 1.0 * 0.1
    assert serverless_cost(result, rates) == pytest.approx(expected)
    catalog = default_catalog()
    from_catalog = ServerlessRates.from_catalog(catalog)
    assert from_catalog.request == catalog.rate("serverless.request")
    assert from_catalog.gpu_second == catalog.gpu_second


def test_the_sim_view_lets_the_slo_count_failures_and_cold_starts() -> None:
    result = run([0.0, 0.0, 10.0], [0.1, 0.1, 0.1], max_concurrency=1)
    sim = result.as_sim_result("serverless")
    assert sim.policy == "serverless"
    assert sim.cold_starts == 1
    assert sim.max_replicas == 1
    assert Slo(0.25).missed(sim).tolist() == [True, True, False]  # cold, throttled, warm
    assert Slo(0.0, includes_service=False).missed(sim).tolist() == [True, True, False]
    assert sim.timeline[0] == (0.0, 0)
    assert sim.end_s == pytest.approx(10.1)


def test_config_comes_from_the_catalog_and_refuses_bad_values() -> None:
    catalog = default_catalog()
    cfg = ServerlessConfig.from_catalog(catalog, memory_gib=4, max_execution_s=60)
    assert cfg.max_concurrency == 1000
    assert cfg.max_execution_s == 60
    assert cfg.cold_start_s == catalog.number("serverless.cold_start_s")
    assert cfg.keep_alive_s == catalog.number("serverless.keep_alive_s")
    for field, value, flag in [
        ("memory_gib", 0.0, "--memory-gb"),
        ("max_concurrency", 0, "--max-concurrency"),
        ("max_execution_s", -1.0, "--max-execution-s"),
        ("cold_start_s", float("nan"), "--serverless-cold-start-s"),
        ("keep_alive_s", float("inf"), "--keep-alive-s"),
        ("gpu", -1.0, "--gpu"),
    ]:
        with pytest.raises(InvalidInput, match=flag):
            config(**{field: value})


def test_arrays_must_match_and_be_sorted() -> None:
    with pytest.raises(InvalidInput, match="differ in length"):
        run([0.0, 1.0], [0.1])
    with pytest.raises(InvalidInput, match="ascending"):
        run([1.0, 0.0], [0.1, 0.1])
    empty = run([], [])
    assert empty.requests == 0
    assert empty.as_sim_result().end_s == 0.0


# ---- invariants ------------------------------------------------------------------------

traces = st.lists(
    st.tuples(st.floats(0, 5, allow_nan=False), st.floats(0, 3, allow_nan=False)),
    min_size=1,
    max_size=60,
).map(lambda pairs: (np.cumsum([g for g, _ in pairs]), np.asarray([s for _, s in pairs])))
configs = st.builds(
    ServerlessConfig,
    memory_gib=st.sampled_from([0.125, 1.0, 2.0, 10.0]),
    max_concurrency=st.integers(1, 8),
    max_execution_s=st.floats(0.05, 4.0),
    cold_start_s=st.floats(0, 3.0),
    keep_alive_s=st.floats(0, 10.0),
    bill_cold_start=st.booleans(),
    gpu=st.sampled_from([0.0, 1.0]),
)


def busy_peak(result: ServerlessRun) -> int:
    """Most instances busy at once, counted independently of the simulation."""
    ran = result.outcome != THROTTLED
    events = sorted(
        [(t, 1) for t in result.arrival_s[ran]] + [(t, -1) for t in result.busy_until_s[ran]],
        key=lambda e: (e[0], e[1]),  # a departure at t frees its slot for an arrival at t
    )
    peak = level = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


@settings(max_examples=150, deadline=None)
@given(traces, configs)
def test_every_request_is_served_throttled_or_timed_out_within_the_limits(
    trace: tuple[np.ndarray, np.ndarray], cfg: ServerlessConfig
) -> None:
    arrival, service = trace
    result = simulate_serverless(arrival, service, cfg)
    assert result.served + result.throttled + result.timed_out == result.requests
    assert busy_peak(result) <= cfg.max_concurrency
    assert result.cold_starts <= result.invocations
    assert result.cold_starts == len(set(result.instance[result.instance >= 0].tolist()))
    served = result.outcome == SERVED
    latency = result.as_sim_result().finish_s - arrival
    expected = service + np.where(result.cold, cfg.cold_start_s, 0.0)
    assert np.allclose(latency[served], expected[served])
    assert np.all(service[result.outcome == TIMED_OUT] > cfg.max_execution_s)
    assert np.all(service[served] <= cfg.max_execution_s)
    assert np.all(result.billed_ms[result.outcome != THROTTLED] >= 1)
    again = simulate_serverless(arrival, service, cfg)
    assert np.array_equal(again.outcome, result.outcome)
    assert np.array_equal(again.billed_ms, result.billed_ms)
    assert np.array_equal(again.instance, result.instance)


@settings(max_examples=150, deadline=None)
@given(traces, configs)
def test_an_instance_runs_one_request_at_a_time_and_is_warm_only_within_keep_alive(
    trace: tuple[np.ndarray, np.ndarray], cfg: ServerlessConfig
) -> None:
    result = simulate_serverless(trace[0], trace[1], cfg)
    for ident in set(result.instance[result.instance >= 0].tolist()):
        uses = np.flatnonzero(result.instance == ident)
        assert result.cold[uses[0]]  # an instance starts cold, then serves warm
        assert not result.cold[uses[1:]].any()
        for before, after in itertools.pairwise(uses):
            free_at = result.busy_until_s[before]
            assert result.outcome[before] != TIMED_OUT  # a timed-out instance is reset
            assert free_at <= result.arrival_s[after] <= free_at + cfg.keep_alive_s


@settings(max_examples=100, deadline=None)
@given(
    traces,
    configs,
    st.tuples(*[st.floats(0, 1, allow_nan=False)] * 3),
    st.tuples(*[st.floats(0, 1, allow_nan=False)] * 3),
)
def test_cost_grows_with_every_price(
    trace: tuple[np.ndarray, np.ndarray],
    cfg: ServerlessConfig,
    low: tuple[float, float, float],
    extra: tuple[float, float, float],
) -> None:
    result = simulate_serverless(trace[0], trace[1], cfg)
    cheap = ServerlessRates(*low)
    dear = ServerlessRates(*(a + b for a, b in zip(low, extra, strict=True)))
    assert 0 <= serverless_cost(result, cheap) <= serverless_cost(result, dear)


@settings(max_examples=100, deadline=None)
@given(traces, configs, st.floats(0, 20, allow_nan=False), st.floats(0, 3, allow_nan=False))
def test_cost_grows_with_requests(
    trace: tuple[np.ndarray, np.ndarray], cfg: ServerlessConfig, at: float, service: float
) -> None:
    # Without throttling, and with start-up time unbilled, each invocation's bill is its own
    # (a throttled request is free, and a billed start-up moves between requests).
    arrival, services = trace
    cfg = ServerlessConfig(cfg.memory_gib, 10_000, cfg.max_execution_s, cfg.cold_start_s,
                           cfg.keep_alive_s, bill_cold_start=False, gpu=cfg.gpu)  # fmt: skip
    rates = ServerlessRates.from_catalog(default_catalog())
    index = int(np.searchsorted(arrival, at))
    more = simulate_serverless(
        np.insert(arrival, index, at), np.insert(services, index, service), cfg
    )
    fewer = simulate_serverless(arrival, services, cfg)
    assert more.throttled == fewer.throttled == 0
    assert serverless_cost(more, rates) > serverless_cost(fewer, rates)


@settings(max_examples=60, deadline=None)
@given(traces, configs)
def test_a_limit_above_the_request_count_never_throttles(
    trace: tuple[np.ndarray, np.ndarray], cfg: ServerlessConfig
) -> None:
    arrival, service = trace
    roomy = ServerlessConfig(cfg.memory_gib, arrival.size, cfg.max_execution_s, cfg.cold_start_s,
                             cfg.keep_alive_s)  # fmt: skip
    assert simulate_serverless(arrival, service, roomy).throttled == 0
