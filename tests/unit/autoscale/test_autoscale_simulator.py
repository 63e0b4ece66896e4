"""The simulator's queue, replicas, cold starts and accounting on hand-checkable loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelyard.autoscale import (
    DemandForesight,
    PolicySettings,
    SimConfig,
    build_policy,
    fixed,
    load_timestamps,
    simulate,
)
from modelyard.autoscale.experiment import Experiment, run_policies, summaries
from modelyard.autoscale.report import SUMMARY_KEYS, PolicySummary, Slo

TRACES = Path(__file__).parents[3] / ".." / "shared" / "traces"


def test_one_replica_serves_concurrency_requests_at_once_and_queues_the_rest() -> None:
    arrivals = np.zeros(5)
    service = np.full(5, 1.0)
    result = simulate(fixed(1), arrivals, service, SimConfig(2, 2.0))
    assert sorted(result.finish_s.tolist()) == [1.0, 1.0, 2.0, 2.0, 3.0]
    assert result.replica_seconds == pytest.approx(3.0)  # warm from t=0 to the last finish
    assert result.cold_starts == 0
    assert result.scale_events == 0


def test_queue_limit_drops_requests() -> None:
    result = simulate(fixed(1), np.zeros(6), np.full(6, 1.0), SimConfig(1, 0.0, queue_limit=2))
    assert result.dropped == 3
    assert np.isnan(result.finish_s).sum() == 3


def test_scale_from_zero_pays_one_cold_start() -> None:
    policy = build_policy(
        "kpa", PolicySettings(1, 1.0, True, cold_start_s=2.0)
    )  # KPA starts at zero (nothing in flight)
    result = simulate(policy, np.array([5.0]), np.array([0.5]), SimConfig(1, 2.0))
    assert result.cold_starts == 1
    assert result.start_s[0] == pytest.approx(7.0)  # poked on arrival, ready 2 s later
    assert result.finish_s[0] == pytest.approx(7.5)
    assert result.replica_seconds == pytest.approx(2.5)


def test_oracle_prewarms_so_nobody_waits() -> None:
    arrivals = np.array([10.0, 10.1, 10.2, 40.0])
    service = np.full(4, 1.0)
    policy = build_policy("oracle", PolicySettings(1, 1.0, True, 2.0))
    result = simulate(policy, arrivals, service, SimConfig(1, 2.0))
    assert np.allclose(result.start_s, arrivals)
    assert result.max_replicas == 3


def test_foresight_peak_with_and_without_smoothing() -> None:
    arrivals = np.array([0.0, 0.0, 0.1, 5.0])
    service = np.array([1.0, 1.0, 0.05, 1.0])
    raw = DemandForesight(arrivals, service)
    assert raw(0.0, 0.5) == 3
    assert raw(2.0, 1.0) == 0
    assert raw(2.0, 4.0) == 1
    smooth = DemandForesight(arrivals, service, smoothing_s=1.0)
    assert 1 <= smooth(0.0, 0.5) <= 2  # short requests may share a slot within the budget


def test_summary_has_exactly_the_documented_keys_and_counts_drops_as_misses() -> None:
    result = simulate(fixed(1), np.zeros(4), np.full(4, 0.1), SimConfig(1, 0.0, queue_limit=1))
    summary = summaries({"fixed:1": result}, Experiment(1, 0.0, Slo(0.15)))["fixed:1"]
    assert tuple(PolicySummary.__dataclass_fields__) == SUMMARY_KEYS
    assert summary.requests == 4
    assert summary.dropped == 2
    assert summary.slo_violation_pct == pytest.approx(75.0)  # 2 dropped + 1 waited 0.1 s
    wait_slo = summaries({"f": result}, Experiment(1, 0.0, Slo(0.15, includes_service=False)))
    assert wait_slo["f"].slo_violation_pct == pytest.approx(50.0)


def test_azure_slice_default_meets_the_slo_with_fewer_replicas_than_kpa() -> None:
    path = TRACES / "azure_llm_conv_2023.csv"
    if not path.exists():
        pytest.skip(f"Azure trace not found at {path.resolve()}")
    trace = load_timestamps(path, time_column="TIMESTAMP").scaled(10)
    keep = trace.arrival_s < 120.0
    arrivals = trace.arrival_s[keep]
    sliced = type(trace)(arrivals, None, trace.source)
    experiment = Experiment(4, 2.0, Slo(0.25))
    results = run_policies(sliced, np.full(arrivals.size, 0.04), ["default", "kpa"], experiment)
    table = summaries(results, experiment)
    assert table["default"].slo_violation_pct <= 1.0
    assert table["default"].replica_seconds <= table["kpa"].replica_seconds
