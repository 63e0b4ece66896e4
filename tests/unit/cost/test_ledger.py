"""The ledger on hand-made facts: figures computed by hand, additivity over split periods,
roll-ups that sum to the total, identical recomputation, tag precedence, and periods."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.core.cost_facts import (
    CostFacts,
    ReplicaFact,
    RunFact,
    RunInfo,
    StorageFact,
    TrafficFact,
)
from modelyard.core.errors import InvalidInput
from modelyard.cost import parse_catalog
from modelyard.cost._ledger import build_ledger
from modelyard.cost.service import parse_instant, resolve_period

T0 = 1_700_000_000_000  # ms
H = 3_600_000
GIB = 1 << 30

# Round prices per base unit: 0.001 per vCPU-s, 0.0001 per GiB-s, 0.01 per GPU-s,
# 0.001 per stored GiB-s (86.4 per GB-day).
CATALOG = parse_catalog(
    """
currency = "EUR"
[provisioned]
cpu = "3.6 EUR per vCPU-hour"
memory = "0.36 EUR per GB-hour"
gpu = "36 EUR per GPU-hour"
spot_discount = 0.5
[serverless]
request = "0.2 EUR per 1M requests"
compute = "0.00001 EUR per GB-second"
max_concurrency = 10
max_execution_s = 60
cold_start_s = 1
keep_alive_s = 60
[storage]
artifacts = "86.4 EUR per GB-day"
[runs]
cpu = 1
memory_gb = 2
gpu = 0
""",
    "test",
)


def _replica(
    rid: str,
    start_s: float,
    stop_s: float | None,
    *,
    cpu: float = 1.0,
    memory_mb: int = 1024,
    gpu: float = 0.0,
    revision: int = 1,
    deployment: str = "churn-api",
    dep_id: int = 1,
    project: str = "fraud",
) -> ReplicaFact:
    stop = None if stop_s is None else T0 + int(stop_s * 1000)
    return ReplicaFact(
        rid, project, deployment, dep_id, revision, cpu, memory_mb, gpu,
        T0 + int(start_s * 1000), stop,
    )  # fmt: skip


def _facts() -> CostFacts:
    """Two replicas of churn-api, two runs, a GiB in storage, two traffic buckets."""
    return CostFacts(
        now_ms=T0 + 6000_000,
        replicas=(
            # 3600 s x (2 x 0.001 + 1 GiB x 0.0001) = 7.56
            _replica("a", 0, 3600, cpu=2.0, memory_mb=1024),
            # still running, billed up to now: 600 s x (0.5e-3 + 0.5 x 1e-4 + 1e-2) = 6.33
            _replica("b", 5400, None, cpu=0.5, memory_mb=512, gpu=1.0, revision=2),
        ),
        runs=(
            # the half inside the period: 1800 s x (1e-3 + 2 x 1e-4) = 2.16
            RunFact("r1", "fraud", T0 - 1800_000, T0 + 1800_000),
            # tagged 4 vCPU: 900 s x (4e-3 + 2e-4) = 3.78
            RunFact("r2", "fraud", T0, T0 + 900_000),
        ),
        storage=(
            # 1 GiB over 6000 s (up to now) x 0.001 = 6.0, billed to run r1
            StorageFact("run:r1", "fraud", "", None, "r1", T0 - H, GIB),
        ),
        traffic=(
            TrafficFact("fraud", "churn-api", 1, T0 + 60_000, 1000, 10.0, 20.0, 0.0),
            TrafficFact("fraud", "churn-api", 1, T0 + 120_000, 0, 10.0, 20.0, 20.0),
        ),
        project_tags={"fraud": {"team": "risk", "env": "prod"}},
        deployment_tags={1: {"env": "staging"}},
        runs_info={
            "r1": RunInfo("train", {"mlflow.user": "ann", "owner": "ann"}),
            "r2": RunInfo("sweep", {"cost.cpu": "4"}),
        },
    )


def test_hand_computed_figures() -> None:
    ledger = build_ledger(_facts(), CATALOG, T0, T0 + 2 * H)
    total = ledger.total
    assert ledger.currency == "EUR"
    assert total.cost == pytest.approx(7.56 + 6.33 + 2.16 + 3.78 + 6.0, rel=1e-12)
    assert total.cost_by_kind == pytest.approx(
        {"replica": 7.56 + 6.33, "run": 2.16 + 3.78, "storage": 6.0}, rel=1e-12
    )
    assert total.replica_ms == 4200_000
    assert total.run_ms == 2700_000
    assert total.cpu_ms == pytest.approx(2 * 3600_000 + 0.5 * 600_000 + 1800_000 + 4 * 900_000)
    assert total.gpu_ms == pytest.approx(600_000)
    assert total.byte_ms == GIB * 6000_000
    assert total.requests == 1000
    assert total.idle_share == pytest.approx(0.5)
    (churn, other) = ledger.rollup("deployment")
    assert (churn.key, churn.project) == ("churn-api", "fraud")
    assert churn.cost == pytest.approx(13.89, rel=1e-12)
    assert churn.cost_per_1k == pytest.approx(13.89, rel=1e-12)  # 1000 requests
    assert other.key == "(runs and storage)"
    assert other.cost_per_1k is None


def test_run_capacity_tags_and_a_bad_one_warns() -> None:
    facts = dataclasses.replace(
        _facts(), runs_info={"r1": RunInfo("t", {"cost.cpu": "lots"}), "r2": RunInfo("s", {})}
    )
    ledger = build_ledger(facts, CATALOG, T0, T0 + 2 * H)
    assert ledger.warnings == (
        "run r1: tag cost.cpu='lots' is not a number >= 0; billed as 1 (runs.cpu)",
    )
    runs = {g.key: g for g in ledger.rollup("run")}
    assert runs["r1"].cost == pytest.approx(2.16 + 6.0)  # its stored GiB too
    assert runs["r2"].cost == pytest.approx(900 * 1.2e-3)  # untagged: the catalog's 1 vCPU
    assert runs["(not a run)"].cost == pytest.approx(7.56 + 6.33)


def test_tags_roll_up_with_precedence_and_untagged_cost() -> None:
    facts = dataclasses.replace(
        _facts(),
        storage=(*_facts().storage, StorageFact("lost", "", "", None, "", T0, GIB)),
    )
    ledger = build_ledger(facts, CATALOG, T0, T0 + 2 * H)
    by_env = {g.key: g.cost for g in ledger.rollup("tag", tag_key="env")}
    # churn-api's own env wins over the project's; runs keep the project's.
    assert by_env["env=staging"] == pytest.approx(13.89)
    assert by_env["env=prod"] == pytest.approx(2.16 + 3.78 + 6.0)
    assert by_env["(untagged)"] == pytest.approx(6.0)  # storage of an unknown namespace
    assert math.fsum(by_env.values()) == pytest.approx(ledger.total.cost)
    every = {g.key: g.cost for g in ledger.rollup("tag")}
    assert every["team=risk"] == pytest.approx(ledger.total.cost - 6.0)
    assert every["owner=ann"] == pytest.approx(2.16 + 6.0)
    assert not any(k.startswith(("mlflow.", "cost.")) for k in every)
    projects = {g.key: g.cost for g in ledger.rollup("project")}
    assert projects == pytest.approx({"fraud": ledger.total.cost - 6.0, "(unattributed)": 6.0})


def test_recomputing_gives_identical_numbers_whatever_the_order() -> None:
    facts = _facts()
    first = build_ledger(facts, CATALOG, T0, T0 + 2 * H)
    shuffled = list(facts.replicas)
    random.Random(1).shuffle(shuffled)
    again = build_ledger(
        dataclasses.replace(facts, replicas=tuple(reversed(shuffled)), runs=facts.runs[::-1]),
        CATALOG,
        T0,
        T0 + 2 * H,
    )
    assert again == first
    assert again.rollup("deployment") == first.rollup("deployment")


def test_bad_period_and_roll_up_are_refused() -> None:
    with pytest.raises(InvalidInput, match="until must be after since"):
        build_ledger(_facts(), CATALOG, T0, T0)
    ledger = build_ledger(_facts(), CATALOG, T0, T0 + H)
    with pytest.raises(InvalidInput, match="by: unknown roll-up 'team'"):
        ledger.rollup("team")


# ---- invariants ---------------------------------------------------------------------------

_SPAN = 10 * H
_times = st.integers(-_SPAN, 2 * _SPAN)


@st.composite
def _random_facts(draw: st.DrawFn) -> CostFacts:
    replicas = []
    for i in range(draw(st.integers(0, 6))):
        start = draw(_times)
        stop = draw(st.one_of(st.none(), st.integers(start, start + _SPAN)))
        replicas.append(
            ReplicaFact(
                f"r{i}",
                draw(st.sampled_from(["p", "q"])),
                draw(st.sampled_from(["a", "b"])),
                i % 2,
                draw(st.integers(1, 3)),
                draw(st.floats(0.1, 8)),
                draw(st.integers(64, 8192)),
                draw(st.sampled_from([0.0, 1.0])),
                T0 + start,
                None if stop is None else T0 + stop,
            )
        )
    runs = []
    for i in range(draw(st.integers(0, 4))):
        start = draw(_times)
        end = draw(st.one_of(st.none(), st.integers(start, start + _SPAN)))
        runs.append(RunFact(f"x{i}", "p", T0 + start, None if end is None else T0 + end))
    sizes = st.integers(0, 1 << 40)
    storage = [
        StorageFact(f"run:x{i}", "p", "", None, f"x{i}", T0 + draw(_times), draw(sizes))
        for i in range(draw(st.integers(0, 3)))
    ]
    minute = 60_000
    traffic = [
        TrafficFact(
            "p",
            "a",
            0,
            T0 + draw(_times) // minute * minute,
            draw(st.integers(0, 10**6)),
            10.0,
            draw(st.floats(0, 100)),
            0.0,
        )
        for _ in range(draw(st.integers(0, 4)))
    ]
    return CostFacts(
        now_ms=T0 + draw(st.integers(0, 3 * _SPAN)),
        replicas=tuple(replicas),
        runs=tuple(runs),
        storage=tuple(storage),
        traffic=tuple(traffic),
        project_tags={"p": {"team": "t"}},
        runs_info={"x0": RunInfo("x", {"cost.gpu": "2"})},
    )


@settings(max_examples=150, deadline=None)
@given(_random_facts(), st.integers(0, _SPAN), st.integers(1, _SPAN), st.integers(1, _SPAN))
def test_adjacent_periods_add_up(facts: CostFacts, a: int, ab: int, bc: int) -> None:
    start, mid, end = T0 + a, T0 + a + ab, T0 + a + ab + bc
    whole = build_ledger(facts, CATALOG, start, end).total
    left = build_ledger(facts, CATALOG, start, mid).total
    right = build_ledger(facts, CATALOG, mid, end).total
    for exact in ("replica_ms", "run_ms", "byte_ms", "requests"):
        assert getattr(left, exact) + getattr(right, exact) == getattr(whole, exact)
    assert left.cost + right.cost == pytest.approx(whole.cost, rel=1e-9, abs=1e-12)
    assert left.cpu_ms + right.cpu_ms == pytest.approx(whole.cpu_ms, rel=1e-9, abs=1e-9)
    assert min(left.cost, right.cost) >= 0


@settings(max_examples=100, deadline=None)
@given(_random_facts(), st.sampled_from(["deployment", "project", "run", "revision"]))
def test_roll_ups_sum_to_the_total(facts: CostFacts, by: str) -> None:
    ledger = build_ledger(facts, CATALOG, T0, T0 + _SPAN)
    groups = ledger.rollup(by)
    total = ledger.total
    assert math.fsum(g.cost for g in groups) == pytest.approx(total.cost, rel=1e-9, abs=1e-12)
    assert sum(g.replica_ms for g in groups) == total.replica_ms
    assert sum(g.requests for g in groups) == total.requests
    assert [g.cost for g in groups] == sorted((g.cost for g in groups), reverse=True)
    keyed = ledger.rollup("tag", tag_key="team")
    assert math.fsum(g.cost for g in keyed) == pytest.approx(total.cost, rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(_random_facts(), st.integers(0, _SPAN))
def test_nothing_is_billed_past_now(facts: CostFacts, extra: int) -> None:
    """A period reaching past "now" bills what still runs only up to now: extending it
    changes nothing (every recorded stop lies in the past, as in the store)."""
    recorded = [r.stopped_ms or 0 for r in facts.replicas] + [r.end_ms or 0 for r in facts.runs]
    now = max([facts.now_ms, *recorded])
    facts = dataclasses.replace(facts, now_ms=now)
    start = now - _SPAN
    assert build_ledger(facts, CATALOG, start, now + 1 + extra).total.cost == pytest.approx(
        build_ledger(facts, CATALOG, start, now + 1).total.cost, rel=1e-12
    )


# ---- periods ------------------------------------------------------------------------------

NOW = 1_764_547_200_000  # 2025-12-01T00:00:00Z


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        ("7d", None, (NOW - 7 * 86_400_000, NOW)),
        ("12h", None, (NOW - 12 * H, NOW)),
        ("1.5h", "now", (NOW - 5_400_000, NOW)),
        ("2w", "2025-11-01", (1_761_955_200_000 - 14 * 86_400_000, 1_761_955_200_000)),
        ("2025-11-30", None, (NOW - 86_400_000, NOW)),
        ("2025-11-30T12:00:00Z", "2025-11-30T18:00:00+00:00", (NOW - 12 * H, NOW - 6 * H)),
        ("2025-11-30T12:00:00", "1h", (NOW - 12 * H, NOW - H)),
    ],
)
def test_periods(since: str, until: str | None, expected: tuple[int, int]) -> None:
    assert resolve_period(since, until, NOW) == expected


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("7x", None, "since: '7x' is not a duration"),
        ("7", None, "since: '7' is not a duration"),
        ("0d", None, "since: '0d' is not a duration"),
        ("7d", "soon", "until: 'soon' is not a duration"),
        ("2025-12-02", None, "since: '2025-12-02' is not before until"),
        ("1d", "2025-12-02", None),
        ("30000d", None, "since: '30000d' is before 1970"),
        ("5000d", None, "since: a report covers at most 3660 days"),
    ],
)
def test_bad_periods_name_the_field(since: str, until: str | None, message: str | None) -> None:
    if message is None:
        assert resolve_period(since, until, NOW)[1] == NOW + 86_400_000
        return
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        resolve_period(since, until, NOW)


def test_instant_of_a_naive_time_is_utc() -> None:
    assert parse_instant("until", "2025-12-01T00:00:00", 0) == NOW
    assert parse_instant("until", "2025-12-01T01:00:00+01:00", 0) == NOW
