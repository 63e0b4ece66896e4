"""The estimator: options, pricing on a replayed trace, the recommendation, the reports."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

from modelyard.autoscale.experiment import Experiment, run_policies
from modelyard.autoscale.report import Slo
from modelyard.autoscale.traces import Trace
from modelyard.core.errors import InvalidInput
from modelyard.cost import default_catalog
from modelyard.cost.estimate import (
    Estimate,
    OptionSpec,
    Resources,
    estimate,
    format_money,
    parse_options,
    recommend,
)
from modelyard.cost.estimate_report import (
    OPTION_KEYS,
    estimate_json,
    markdown_report,
    plot_estimate,
    table_rows,
)
from modelyard.cost.serverless import ServerlessConfig, ServerlessRates, serverless_cost
from modelyard.cost.serverless import simulate_serverless as run_serverless

# ---- options ---------------------------------------------------------------------------


def test_options_parse_in_order_with_their_simulator_policy() -> None:
    specs = parse_options(" provisioned:4, autoscaled ,SERVERLESS,spot,spot:3,autoscaled:kpa")
    assert specs == [
        OptionSpec("provisioned:4", "provisioned", "fixed:4"),
        OptionSpec("autoscaled:default", "autoscaled", "default"),
        OptionSpec("serverless", "serverless"),
        OptionSpec("spot", "autoscaled", "default", spot=True),
        OptionSpec("spot:3", "provisioned", "fixed:3", spot=True),
        OptionSpec("autoscaled:kpa", "autoscaled", "kpa"),
    ]
    auto = parse_options("provisioned:auto,spot:auto,spot:hpa")
    assert [s.auto for s in auto] == [True, True, False]
    assert auto[2] == OptionSpec("spot:hpa", "autoscaled", "hpa", spot=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "name at least one option"),
        (" , ", "name at least one option"),
        ("lambda", "unknown option 'lambda'"),
        ("provisioned", "say how many replicas"),
        ("provisioned:0", "at least 1 replica"),
        ("provisioned:-2", "say how many replicas"),
        ("autoscaled:magic", "unknown option 'autoscaled:magic'"),
        ("autoscaled:fixed:3", "unknown option"),
        ("serverless:2", "unknown option 'serverless:2'"),
        ("autoscaled,autoscaled:default", "autoscaled:default is named twice"),
        ("spot,spot:default", "spot is named twice"),
    ],
)
def test_bad_options_are_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=f"--options: .*{message}"):
        parse_options(text)


def test_resources_refuse_negative_or_missing_memory() -> None:
    with pytest.raises(InvalidInput, match="--cpu"):
        Resources(cpu=-1)
    with pytest.raises(InvalidInput, match="--gpu"):
        Resources(gpu=float("nan"))
    with pytest.raises(InvalidInput, match="--memory-gb must be > 0"):
        Resources(memory_gib=0)


# ---- the recommendation ------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    cost: float
    slo_miss_pct: float
    failure_pct: float = 0.0

    @property
    def label(self) -> str:
        return self.name


def test_the_cheapest_option_within_the_budget_wins_and_names_the_runner_up() -> None:
    rows = [Row("provisioned:4", 4.80, 0.0), Row("autoscaled:default", 3.12, 0.4),
            Row("serverless", 2.00, 3.5)]  # fmt: skip
    verdict = recommend(rows, 1.0, "USD")
    assert verdict.option == "autoscaled:default"
    assert verdict.within_budget
    assert verdict.reason == (
        "autoscaled:default: cheapest option within 1% SLO misses: 3.12 USD vs 4.80 USD "
        "for provisioned:4 (-35%); serverless costs less (2.00 USD) but misses 3.50%"
    )


def test_the_only_option_within_budget_and_no_option_within_budget() -> None:
    only = recommend([Row("a", 5.0, 0.5), Row("b", 1.0, 2.0)], 1.0, "EUR")
    assert only.option == "a"
    assert only.reason.startswith("a: the only option within 1% SLO misses (5.00 EUR)")
    none = recommend([Row("a", 5.0, 3.0), Row("b", 1.0, 2.0)], 1.0, "USD")
    assert none.option == "b"
    assert not none.within_budget
    assert none.reason == (
        "no option keeps SLO misses within 1%; b misses the fewest (2.00%, 1.00 USD)"
    )
    assert recommend([], 1.0, "USD").option is None


def test_failures_beyond_the_budget_disqualify_and_ties_go_to_fewer_misses() -> None:
    rows = [Row("a", 1.0, 0.5, failure_pct=1.5), Row("b", 2.0, 0.9), Row("c", 2.0, 0.1)]
    verdict = recommend(rows, 1.0, "USD")
    assert verdict.option == "c"
    assert "vs 2.00 USD for b (+0%)" in verdict.reason


def test_money_keeps_three_digits_of_small_sums() -> None:
    assert format_money(0.0296) == "0.0296"
    assert format_money(0.0) == "0.00"
    assert format_money(1234.567) == "1,234.57"


options_lists = st.lists(
    st.tuples(
        st.floats(0, 1e4, allow_nan=False),
        st.floats(0, 100, allow_nan=False),
        st.floats(0, 100, allow_nan=False),
    ),
    max_size=8,
).map(lambda rows: [Row(f"o{i}", c, m, min(f, m)) for i, (c, m, f) in enumerate(rows)])


@given(options_lists, st.floats(0, 100, allow_nan=False), st.randoms(use_true_random=False))
def test_the_recommendation_is_the_cheapest_qualifying_or_the_fewest_misses(
    options: list[Row], budget: float, rng: random.Random
) -> None:
    verdict = recommend(options, budget, "USD")
    if not options:
        assert verdict.option is None
        return
    by_name = {o.name: o for o in options}
    chosen = by_name[str(verdict.option)]
    assert "\n" not in verdict.reason
    assert chosen.name in verdict.reason
    qualifying = [o for o in options if o.slo_miss_pct <= budget and o.failure_pct <= budget]
    if qualifying:
        assert verdict.within_budget
        assert chosen in qualifying
        assert chosen.cost == min(o.cost for o in qualifying)
        if len(qualifying) > 1:
            assert " vs " in verdict.reason
    else:
        assert not verdict.within_budget
        assert chosen.slo_miss_pct == min(o.slo_miss_pct for o in options)
    shuffled = list(options)
    rng.shuffle(shuffled)
    again = by_name[str(recommend(shuffled, budget, "USD").option)]
    assert (again.cost, again.slo_miss_pct) == (chosen.cost, chosen.slo_miss_pct)


# ---- the estimate on a replayed trace ----------------------------------------------------


def bursty_trace() -> tuple[Trace, np.ndarray]:
    """Two bursts with a quiet gap: 300 requests at 20/s, 60 s quiet, 300 more."""
    first = np.arange(300) * 0.05
    arrival = np.concatenate([first, first + 75.0])
    return Trace(arrival, None, "synthetic"), np.full(arrival.size, 0.1)


def run_estimate(options: str, budget: float = 1.0, **changes: object) -> Estimate:
    trace, service = bursty_trace()
    catalog = default_catalog()
    memory, gpu = float(changes.pop("memory", 2.0)), float(changes.pop("gpu", 0.0))  # type: ignore[arg-type]
    return estimate(
        trace,
        service,
        parse_options(options),
        experiment=Experiment(2, 2.0, Slo(0.5), max_replicas=10),
        resources=Resources(float(changes.pop("cpu", 1.0)), memory, gpu),  # type: ignore[arg-type]
        serverless=ServerlessConfig.from_catalog(catalog, memory_gib=memory, gpu=gpu),
        catalog=catalog,
        max_slo_miss_pct=budget,
    )


def test_replica_options_cost_replica_seconds_at_the_catalog_rate() -> None:
    result = run_estimate("provisioned:3,autoscaled:default,spot,serverless")
    catalog = default_catalog()
    rows = {row.name: row for row in result.options}
    assert list(rows) == ["provisioned:3", "autoscaled:default", "spot", "serverless"]
    per_second = catalog.replica_second(1.0, 2.0)
    for name in ("provisioned:3", "autoscaled:default"):
        sim = result.runs[name]
        assert rows[name].cost == pytest.approx(sim.replica_seconds * per_second)
        assert rows[name].replica_hours == pytest.approx(sim.replica_seconds / 3600)
        assert rows[name].gib_seconds is None
    # 3 fixed replicas for the whole trace, from the first arrival to the last finish.
    assert result.runs["provisioned:3"].replica_seconds == pytest.approx(
        3 * (75 + 299 * 0.05 + 0.1)
    )
    assert result.runs["spot"] is result.runs["autoscaled:default"]  # one replay, two prices
    assert rows["spot"].cost == pytest.approx(rows["autoscaled:default"].cost * 0.3)
    for row in rows.values():
        assert row.requests == 600
        assert row.cost_per_1k == pytest.approx(row.cost * 1000 / 600)


def test_serverless_is_priced_by_its_model_and_counts_cold_starts() -> None:
    result = run_estimate("serverless")
    (row,) = result.options
    trace, service = bursty_trace()
    catalog = default_catalog()
    run = run_serverless(
        trace.arrival_s, service, ServerlessConfig.from_catalog(catalog, memory_gib=2.0)
    )
    assert row.cost == pytest.approx(serverless_cost(run, ServerlessRates.from_catalog(catalog)))
    assert row.gib_seconds == pytest.approx(run.gib_seconds)
    assert row.replica_hours is None
    assert row.cold_starts == run.cold_starts > 0
    # Cold starts (1 s) break the 0.5 s SLO: each one is a miss.
    assert row.slo_misses == row.cold_starts
    assert row.failures == row.throttled == row.timed_out == 0


def test_provisioned_auto_is_the_fewest_fixed_replicas_within_the_budget() -> None:
    result = run_estimate("provisioned:auto", budget=1.0)
    (row,) = result.options
    count = int(row.policy.split(":")[1])
    assert row.label == f"provisioned:auto ({count} replica{'s' if count > 1 else ''})"
    assert row.slo_miss_pct <= 1.0
    trace, service = bursty_trace()
    experiment = Experiment(2, 2.0, Slo(0.5), max_replicas=10)
    if count > 1:
        fewer = run_policies(trace, service, [f"fixed:{count - 1}"], experiment)
        sim = fewer[f"fixed:{count - 1}"]
        assert Slo(0.5).missed(sim).mean() * 100 > 1.0
    assert any(f"{count} replica" in note for note in result.notes)
    # An SLO shorter than the service time: no replica count can meet it.
    catalog = default_catalog()
    impossible = estimate(
        trace,
        service,
        parse_options("provisioned:auto"),
        experiment=Experiment(2, 2.0, Slo(0.05), max_replicas=3),
        resources=Resources(),
        serverless=ServerlessConfig.from_catalog(catalog, memory_gib=2.0),
        catalog=catalog,
    )
    assert impossible.options[0].policy == "fixed:3"
    assert impossible.options[0].slo_miss_pct == 100.0
    assert "even 3 replicas (--max-replicas) miss more than 1%" in impossible.notes[0]
    assert not impossible.recommendation.within_budget


def test_the_recommendation_and_notes_come_with_the_estimate() -> None:
    result = run_estimate("provisioned:3,spot,serverless", gpu=1.0, cpu=4.0)
    assert result.recommendation.option in {row.name for row in result.options}
    assert any("spot capacity can be reclaimed" in note for note in result.notes)
    assert any("GPUs are billed" in note for note in result.notes)
    assert any("about 1.16 vCPU, less than --cpu 4" in note for note in result.notes)
    with pytest.raises(InvalidInput, match="--max-slo-miss-pct"):
        run_estimate("spot", budget=-1)


def test_trace_notes_are_passed_on() -> None:
    trace, service = bursty_trace()
    noted = Trace(trace.arrival_s, None, "x", ("3 rows go back in time",))
    catalog = default_catalog()
    result = estimate(noted, service, parse_options("serverless"),
                      experiment=Experiment(2, 2.0, Slo(0.5)), resources=Resources(),
                      serverless=ServerlessConfig.from_catalog(catalog, memory_gib=2.0),
                      catalog=catalog)  # fmt: skip
    assert result.notes[0] == "3 rows go back in time"


def test_json_markdown_and_plot(tmp_path: Path) -> None:
    result = run_estimate("provisioned:2,autoscaled:default,serverless,spot")
    document = estimate_json({"x": 1}, "synthetic", 90.0, result, 1.0)
    assert set(document) == {"settings", "trace", "currency", "options", "recommendation",
                             "notes"}  # fmt: skip
    options = document["options"]
    assert isinstance(options, dict)
    assert list(options) == ["provisioned:2", "autoscaled:default", "serverless", "spot"]
    for row in options.values():
        assert tuple(row) == OPTION_KEYS
    assert document["trace"] == {"source": "synthetic", "requests": 600, "duration_s": 90.0}
    recommendation = document["recommendation"]
    assert isinstance(recommendation, dict)
    assert set(recommendation) == {"option", "within_budget", "max_slo_miss_pct", "reason"}
    page = markdown_report({"x": 1}, 600, 90.0, result, "plot.png")
    assert "| serverless |" in page
    assert f"**Recommendation: {result.recommendation.reason}**" in page
    assert "![" in page
    assert [r[0] for r in table_rows(result)] == [row.label for row in result.options]
    plot_estimate(tmp_path / "e.png", result, Slo(0.5), 1.0)
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"
