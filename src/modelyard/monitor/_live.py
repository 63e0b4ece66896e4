"""Live metrics of a deployment between two gateway snapshots (pure).

The gateway's counters only grow (a restart resets them to zero); a sample is the
difference of two snapshots, summed over the deployment's revisions: requests per
second (and the exact count, ``requests``, the cost ledger sums), the share of 5xx
answers, latency quantiles from the merged histogram, and the requests in flight and
held now.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelyard.deploy.signals import GatewaySnapshot, RevisionCounters
from modelyard.gateway.stats import LATENCY_BUCKETS_S, diff_buckets, quantile_from_buckets


def _start(prev: RevisionCounters | None, cur: RevisionCounters) -> RevisionCounters | None:
    """The counters to diff from: None when there is no earlier read or it was reset."""
    if prev is None or cur.completions < prev.completions or cur.errors < prev.errors:
        return None
    return prev


def live_values(
    prev: GatewaySnapshot | None,
    cur: GatewaySnapshot | None,
    deployment: str,
    *,
    replicas: int,
    log_dropped: int | None = None,
) -> dict[str, float | None]:
    """The sample of ``deployment`` between ``prev`` and ``cur``.

    Rates and quantiles are None when there is no interval to measure over (no earlier
    snapshot, no time passed) or no request finished in it.
    """
    values: dict[str, float | None] = {
        "rps": None,
        "requests": None,
        "p50_ms": None,
        "p90_ms": None,
        "p99_ms": None,
        "error_rate": None,
        "replicas": float(replicas),
        "in_flight": None,
        "queued": None,
        "log_dropped": None if log_dropped is None else float(log_dropped),
    }
    if cur is None:
        return values
    mine = {rev: c for (name, rev), c in cur.revisions.items() if name == deployment}
    before: Mapping[tuple[str, int], RevisionCounters] = prev.revisions if prev else {}
    values["in_flight"] = float(sum(c.in_flight for c in mine.values()))
    values["queued"] = float(sum(c.queued for c in mine.values()))
    if prev is None or cur.now_s <= prev.now_s:
        return values
    completions = errors = 0
    merged = [0] * (len(LATENCY_BUCKETS_S) + 1)
    for rev, c in mine.items():
        start = _start(before.get((deployment, rev)), c)
        base_completions = start.completions if start else 0
        base_errors = start.errors if start else 0
        completions += c.completions - base_completions
        errors += c.errors - base_errors
        if len(c.latency_buckets) == len(merged):
            if start is not None and len(start.latency_buckets) == len(merged):
                counts = diff_buckets(c.latency_buckets, start.latency_buckets)
            else:
                counts = list(c.latency_buckets)
            merged = [a + b for a, b in zip(merged, counts, strict=True)]
    dt = cur.now_s - prev.now_s
    values["rps"] = completions / dt
    values["requests"] = float(completions)
    if completions > 0:
        values["error_rate"] = min(1.0, max(0, errors) / completions)
        for name, q in (("p50_ms", 0.5), ("p90_ms", 0.9), ("p99_ms", 0.99)):
            seconds = quantile_from_buckets(merged, q)
            values[name] = None if seconds is None else round(seconds * 1000, 3)
    return values
