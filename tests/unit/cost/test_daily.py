"""Spend over time: buckets cut at UTC midnights, figures computed by hand, and buckets
that add up to the ledger's total of the same period on random facts."""

from __future__ import annotations

import math
import random

import pytest

from modelyard.core.cost_facts import (
    CostFacts,
    ReplicaFact,
    RunFact,
    RunInfo,
    StorageFact,
    TrafficFact,
)
from modelyard.cost import default_catalog
from modelyard.cost._daily import DAY_MS, MAX_BUCKETS, bucket_days, bucket_edges, spend_over_time
from modelyard.cost._ledger import build_ledger

DAY0 = 19_675 * DAY_MS  # a UTC midnight (2023-11-14)
H = 3_600_000
CATALOG = default_catalog()


def _replica(start: int, stop: int | None, cpu: float = 2.0, memory_mb: int = 2048) -> ReplicaFact:
    return ReplicaFact("r", "p", "d", 1, 1, cpu, memory_mb, 0.0, start, stop)


def test_edges_are_the_period_cut_at_midnights() -> None:
    assert bucket_edges(DAY0 + H, DAY0 + 2 * DAY_MS + 5) == [
        DAY0 + H,
        DAY0 + DAY_MS,
        DAY0 + 2 * DAY_MS,
        DAY0 + 2 * DAY_MS + 5,
    ]
    assert bucket_edges(DAY0, DAY0 + DAY_MS) == [DAY0, DAY0 + DAY_MS]
    assert bucket_edges(DAY0 + H, DAY0 + 2 * H) == [DAY0 + H, DAY0 + 2 * H]
    assert bucket_days(DAY0, DAY0 + 30 * DAY_MS) == 1
    assert bucket_days(DAY0, DAY0 + 365 * DAY_MS) == math.ceil(365 / MAX_BUCKETS)


def test_a_replica_across_midnight_is_split_by_the_hour() -> None:
    facts = CostFacts(now_ms=DAY0 + 10 * DAY_MS, replicas=(_replica(DAY0 - H, DAY0 + 2 * H),))
    buckets = spend_over_time(facts, CATALOG, DAY0 - DAY_MS, DAY0 + DAY_MS)
    per_hour = CATALOG.replica_second(2.0, 2.0) * 3600
    assert [b.start_ms for b in buckets] == [DAY0 - DAY_MS, DAY0]
    assert buckets[0].cost == pytest.approx(per_hour)
    assert buckets[1].cost == pytest.approx(2 * per_hour)


def test_stored_bytes_count_from_their_creation_until_now() -> None:
    gib = 1 << 30
    storage = (
        StorageFact("project:p", "p", "", None, "", DAY0 - 5 * DAY_MS, gib),
        StorageFact("project:p", "p", "", None, "", DAY0 + 12 * H, 2 * gib),
    )
    facts = CostFacts(now_ms=DAY0 + DAY_MS + 6 * H, storage=storage)
    buckets = spend_over_time(facts, CATALOG, DAY0, DAY0 + 3 * DAY_MS)
    per_gib_ms = CATALOG.rate("storage.artifacts") / 1000
    assert buckets[0].cost == pytest.approx(per_gib_ms * (DAY_MS + 2 * 12 * H))
    assert buckets[1].cost == pytest.approx(per_gib_ms * 3 * 6 * H)
    assert buckets[2].cost == 0.0  # after now


def test_buckets_add_up_to_the_ledger_total() -> None:
    rng = random.Random(7)
    start, end = DAY0 + 5 * H, DAY0 + 9 * DAY_MS + 3 * H
    now = end - DAY_MS
    replicas = []
    for _ in range(30):
        a = rng.randrange(start - 2 * DAY_MS, end)
        b = None if rng.random() < 0.2 else a + rng.randrange(1, 4 * DAY_MS)
        replicas.append(_replica(a, b, rng.choice([0.5, 2.0]), rng.choice([512, 4096])))
    runs, info = [], {}
    for i in range(200):
        a = rng.randrange(start - DAY_MS, end)
        runs.append(RunFact(f"run{i}", "p", a, a + rng.randrange(1, 6 * H)))
        info[f"run{i}"] = RunInfo(f"run{i}", {"cost.cpu": "4"} if i % 3 == 0 else {})
    storage = [
        StorageFact(
            f"run:run{i}", "p", "", None, f"run{i}", rng.randrange(start - DAY_MS, end), 10**8
        )
        for i in range(100)
    ]
    traffic = [TrafficFact("p", "d", 1, start + i * 60_000, 3, 60.0, 60.0, 0.0) for i in range(500)]
    facts = CostFacts(
        now_ms=now,
        replicas=tuple(replicas),
        runs=tuple(runs),
        storage=tuple(storage),
        traffic=tuple(traffic),
        runs_info=info,
    )
    buckets = spend_over_time(facts, CATALOG, start, end)
    ledger = build_ledger(facts, CATALOG, start, end)
    assert len(buckets) == 10
    assert math.fsum(b.cost for b in buckets) == pytest.approx(ledger.total.cost, rel=1e-9)
    assert sum(b.requests for b in buckets) == ledger.total.requests == 1500
    for bucket in buckets:  # each bucket is the ledger of its own period
        alone = build_ledger(facts, CATALOG, bucket.start_ms, bucket.end_ms).total.cost
        assert bucket.cost == pytest.approx(alone, rel=1e-9, abs=1e-12)
