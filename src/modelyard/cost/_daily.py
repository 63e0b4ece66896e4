"""Spend over time: a period's facts priced per UTC day (or per run of days) (pure).

The web UI's daily-spend charts. Each fact is priced with the ledger's formulas
(:mod:`._ledger`) over its overlap with each bucket, so the buckets of a period add up
to the period's ledger total (up to float rounding: the sums are grouped differently).
Only totals are kept, not line items, and each replica or run touches only the buckets
it overlaps; stored bytes, which overlap every bucket after their creation, are summed
with a running total, so a month over 10,000 runs costs a pass over the facts, not one
per day.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from modelyard.core.cost_facts import CostFacts
from modelyard.cost._ledger import run_capacity
from modelyard.cost.prices import GIB, PriceCatalog

DAY_MS = 86_400_000
#: The most buckets a chart gets; longer periods use buckets of several days.
MAX_BUCKETS = 92


@dataclass(frozen=True)
class Bucket:
    """What ``[start_ms, end_ms)`` cost, in the catalog's currency, and the requests
    answered in it."""

    start_ms: int
    end_ms: int
    cost: float
    requests: int

    def to_json(self) -> dict[str, object]:
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "cost": self.cost,
            "requests": self.requests,
        }


def bucket_days(start_ms: int, end_ms: int) -> int:
    """Days per bucket: 1, or more so that a long period has at most MAX_BUCKETS."""
    days = math.ceil(max(0, end_ms - start_ms) / DAY_MS)
    return max(1, math.ceil(days / MAX_BUCKETS))


def bucket_edges(start_ms: int, end_ms: int, days: int = 1) -> list[int]:
    """``start_ms``, every multiple of ``days`` UTC days in between, and ``end_ms``."""
    width = days * DAY_MS
    first = (start_ms // width + 1) * width
    return [start_ms, *range(first, end_ms, width), end_ms]


def spend_over_time(
    facts: CostFacts, catalog: PriceCatalog, start_ms: int, end_ms: int, days: int = 1
) -> list[Bucket]:
    """The cost and requests of ``facts`` per bucket of ``days`` UTC days of
    ``[start_ms, end_ms)`` (the first and last buckets may be partial); what still runs
    counts up to ``facts.now_ms``, as in the ledger."""
    edges = bucket_edges(start_ms, end_ms, days)
    n = len(edges) - 1
    open_end = min(end_ms, facts.now_ms)
    terms: list[list[float]] = [[] for _ in range(n)]
    requests = [0] * n

    def index(t: int) -> int:
        return bisect.bisect_right(edges, t) - 1

    def spread(lo: int, hi: int, per_ms: float) -> None:
        """Add ``per_ms`` x the overlap of ``[lo, hi)`` with each bucket."""
        k = index(lo)
        while k < n and edges[k] < hi:
            overlap = min(hi, edges[k + 1]) - max(lo, edges[k])
            if overlap > 0:
                terms[k].append(per_ms * overlap)
            k += 1

    for r in facts.replicas:
        lo = max(start_ms, r.started_ms)
        hi = min(end_ms, r.stopped_ms) if r.stopped_ms is not None else open_end
        if hi > lo:
            rate = r.cpu * catalog.cpu_second + r.memory_mb / 1024 * catalog.gib_second
            spread(lo, hi, (rate + r.gpu * catalog.gpu_second) / 1000)
    warnings: list[str] = []
    for run in facts.runs:
        lo = max(start_ms, run.start_ms)
        hi = min(end_ms, run.end_ms) if run.end_ms is not None else open_end
        if hi > lo:
            info = facts.runs_info.get(run.run_id)
            cap = run_capacity(catalog, info.tags if info else {}, run.run_id, warnings)
            rate = cap["cpu"] * catalog.cpu_second + cap["memory_gb"] * catalog.gib_second
            spread(lo, hi, (rate + cap["gpu"] * catalog.gpu_second) / 1000)
    # Stored bytes: the bucket they appear in gets a part, every later bucket all of it.
    partial = [0] * n
    appearing = [0] * (n + 1)
    for f in facts.storage:
        lo = max(start_ms, f.created_ms)
        if lo < open_end and f.bytes > 0:
            k = index(lo)
            partial[k] += f.bytes * (min(edges[k + 1], open_end) - lo)
            appearing[k + 1] += f.bytes
    per_byte_ms = catalog.rate("storage.artifacts") / 1000 / GIB
    alive = 0
    for k in range(n):
        alive += appearing[k]
        span = max(0, min(edges[k + 1], open_end) - edges[k])
        byte_ms = partial[k] + alive * span
        if byte_ms:
            terms[k].append(byte_ms * per_byte_ms)
    for t in facts.traffic:
        if start_ms <= t.bucket_ms < end_ms:
            requests[index(t.bucket_ms)] += t.requests
    return [Bucket(edges[k], edges[k + 1], math.fsum(terms[k]), requests[k]) for k in range(n)]


__all__ = ["DAY_MS", "MAX_BUCKETS", "Bucket", "bucket_days", "bucket_edges", "spend_over_time"]
