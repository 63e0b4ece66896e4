"""The monitoring and cost pages' pure helpers: the cost period, the worst drifted
feature, rule states, chart specs without NaN, and the budget state."""

from __future__ import annotations

import math
from typing import Any

import pytest

from modelyard.core.errors import InvalidInput
from modelyard.core.monitoring import AlertRuleRecord, DriftRecord
from modelyard.ui.ops_view import (
    budget_state,
    cost_period,
    drift_charts,
    money,
    rule_since,
    rule_status,
    worst_feature,
)

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def _drift(features: list[dict[str, Any]], time_ms: int = 0) -> DriftRecord:
    return DriftRecord(1, 1, time_ms, 0, 0, "train@v1", 100, 0.0, False, {"features": features})


def _feature(column: str, statistic: float, threshold: float, *, p_value: bool) -> dict[str, Any]:
    drifted = statistic < threshold if p_value else statistic >= threshold
    return {
        "column": column,
        "test": "ks" if p_value else "wasserstein",
        "statistic": statistic,
        "p_value": statistic if p_value else None,
        "threshold": threshold,
        "drifted": drifted,
        "tested": True,
    }


def test_the_period_is_this_month_a_month_or_a_duration() -> None:
    this = cost_period(None, NOW)
    assert (this.since, this.until, this.label) == ("2023-11-01", None, "this month (2023-11)")
    assert cost_period("month", NOW) == this
    past = cost_period("2023-02", NOW)
    assert (past.since, past.until) == ("2023-02-01", "2023-03-01")
    december = cost_period("2022-12", NOW)
    assert (december.since, december.until) == ("2022-12-01", "2023-01-01")
    assert cost_period("2023-11", NOW).until is None  # still running: until now
    assert (cost_period("7d", NOW).since, cost_period("7d", NOW).until) == ("7d", None)


@pytest.mark.parametrize("text", ["x", "2023-13", "1969-12", "2023-12", "0d", "7 days", "-7d"])
def test_a_bad_period_names_the_parameter(text: str) -> None:
    with pytest.raises(InvalidInput, match="period"):
        cost_period(text, NOW)


def test_the_worst_feature_is_the_drifted_one_furthest_past_its_threshold() -> None:
    record = _drift(
        [
            _feature("a", 0.04, 0.05, p_value=True),  # drifted, a little
            _feature("b", 0.0001, 0.05, p_value=True),  # drifted, far (500x)
            _feature("c", 0.5, 0.1, p_value=False),  # drifted, 5x
            _feature("d", 0.09, 0.1, p_value=False),  # close, not drifted
        ]
    )
    worst = worst_feature(record)
    assert worst is not None
    assert worst.name == "b"
    calm = _drift([_feature("x", 0.5, 0.05, p_value=True), _feature("y", 0.09, 0.1, p_value=False)])
    closest = worst_feature(calm)
    assert closest is not None
    assert closest.name == "y"
    assert worst_feature(None) is None
    assert worst_feature(_drift([{"column": "odd", "statistic": None, "tested": False}])) is None


def test_charts_hold_no_nan_and_rule_states_read_safely() -> None:
    history = [_drift([_feature("a", math.nan, 0.05, p_value=True)], time_ms=1000)]
    history[0] = DriftRecord(1, 1, 1000, 0, 0, "r", 1, math.inf, False, history[0].report)
    charts = drift_charts(history, ["a"])
    assert charts["share"]["series"][0]["y"] == [None]
    assert charts["features"]["a"]["series"][0] == {"label": "a", "x": [1.0], "y": [None]}

    def rule(state: Any, enabled: bool = True) -> AlertRuleRecord:
        return AlertRuleRecord(1, 1, "d", "p", "p99_ms > 5", "", "", 0.1, state, enabled, "u", 0)

    assert rule_status(rule({"status": "firing", "fired_at_s": 5.0})) == "firing"
    assert rule_since(rule({"status": "firing", "fired_at_s": 5.0})) == 5.0
    assert rule_status(rule({"status": "weird"})) == "inactive"
    assert rule_status(rule({}, enabled=False)) == "disabled"
    assert rule_since(rule({"status": "pending", "active_since_s": "x"})) is None


def test_budget_state_and_money() -> None:
    thresholds = [{"percent": 50.0}, {"percent": 80.0}, {"percent": 100.0}]
    status: dict[str, Any] = {"percent": 10.0, "forecast_percent": None, "thresholds": thresholds}
    assert budget_state(status) == ("within budget", "good")
    assert budget_state({**status, "percent": 85.0}) == ("80% reached", "warn")
    assert budget_state({**status, "forecast_percent": 120.0}) == ("forecast over budget", "warn")
    assert budget_state({**status, "percent": 100.0}) == ("over budget", "bad")
    assert money(1234.5, "EUR") == "1,234.50 EUR"
    assert money(None, "EUR") == "-"
    assert money(math.nan, "EUR") == "-"
