"""Cumulative per-revision and per-replica counters, and latency-histogram helpers.

Every counter is cumulative since the gateway started; the controller diffs two reads.
``load_area`` is the time integral of ``in_flight + queued`` (request-seconds), kept
exact by adding ``count * (now - last_change)`` on every change, so the mean load over a
window is the change in ``load_area`` over the change in ``now_s`` with no sampling error.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence


def _log_buckets(low_s: float, high_s: float, ratio: float) -> tuple[float, ...]:
    steps = math.ceil(math.log(high_s / low_s) / math.log(ratio))
    exact = (high_s / low_s) ** (1.0 / steps)
    bounds = [float(f"{low_s * exact**i:.4g}") for i in range(steps)]
    return (*bounds, high_s)


#: Upper bounds (seconds) of the latency histogram: 0.0001 s to 60 s, ratio ~1.2. A
#: histogram has one more count than bounds: the last counts everything above 60 s.
LATENCY_BUCKETS_S: tuple[float, ...] = _log_buckets(0.0001, 60.0, 1.2)


def bucket_index(value_s: float) -> int:
    """The histogram slot of a latency: the first bucket whose upper bound is ≥ it."""
    return bisect_left(LATENCY_BUCKETS_S, value_s)


def quantile_from_buckets(counts: Sequence[int], q: float) -> float | None:
    """The ``q``-quantile of a latency histogram over :data:`LATENCY_BUCKETS_S`.

    Interpolates linearly inside the bucket holding the quantile; the overflow bucket
    (above 60 s) answers its lower bound, 60 s.

    Args:
        counts: ``len(LATENCY_BUCKETS_S) + 1`` non-negative counts.
        q: The quantile, in [0, 1].

    Returns:
        Seconds, or None for an empty histogram.

    Raises:
        ValueError: ``q`` is out of range, a count is negative or the length is wrong.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    _check_length(counts)
    if any(c < 0 for c in counts):
        raise ValueError("bucket counts cannot be negative")
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    below = 0
    for i, count in enumerate(counts):
        if count == 0:
            continue
        if below + count >= rank:
            lower = LATENCY_BUCKETS_S[i - 1] if i > 0 else 0.0
            if i == len(LATENCY_BUCKETS_S):
                return lower
            upper = LATENCY_BUCKETS_S[i]
            return lower + (upper - lower) * max(0.0, rank - below) / count
        below += count
    return LATENCY_BUCKETS_S[-1]  # unreachable: the last non-empty bucket reaches total


def diff_buckets(new: Sequence[int], old: Sequence[int]) -> list[int]:
    """The histogram of what happened between two reads of the same counter.

    A counter that went backwards means the gateway restarted; then ``new`` itself is
    the difference (as Prometheus treats counter resets).

    Raises:
        ValueError: the lengths are wrong.
    """
    _check_length(new)
    _check_length(old)
    diff = [n - o for n, o in zip(new, old, strict=True)]
    if any(d < 0 for d in diff):
        return list(new)
    return diff


def _check_length(counts: Sequence[int]) -> None:
    if len(counts) != len(LATENCY_BUCKETS_S) + 1:
        raise ValueError(
            f"a latency histogram has {len(LATENCY_BUCKETS_S) + 1} counts, got {len(counts)}"
        )


class RevisionStats:
    """The counters of one revision; the router mutates the fields directly.

    Not thread-safe: only the gateway's event loop touches them.
    """

    __slots__ = (
        "arrivals",
        "codes",
        "completions",
        "errors",
        "in_flight",
        "last_change_s",
        "latency_counts",
        "latency_s_sum",
        "load_area",
        "moved",
        "queued",
        "rejected",
        "service_count",
        "service_s_sum",
        "service_sq_s2_sum",
        "shadow_agreed",
        "shadow_disagreed",
        "shadow_dropped",
        "shadow_failed",
        "shadow_sent",
        "timeouts",
    )

    def __init__(self, now_s: float) -> None:
        self.in_flight = 0
        self.queued = 0
        self.arrivals = 0
        self.completions = 0
        self.errors = 0
        self.rejected = 0
        self.timeouts = 0
        self.moved = 0
        self.service_count = 0
        self.service_s_sum = 0.0
        self.service_sq_s2_sum = 0.0
        self.load_area = 0.0
        self.last_change_s = now_s
        self.latency_counts = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.latency_s_sum = 0.0
        #: Responses by HTTP status (499: the caller went away first), for ``/-/metrics``.
        self.codes: dict[int, int] = {}
        self.shadow_sent = 0
        self.shadow_agreed = 0
        self.shadow_disagreed = 0
        self.shadow_failed = 0
        self.shadow_dropped = 0

    def add_in_flight(self, delta: int, now_s: float) -> None:
        """Change ``in_flight``, first accruing ``load_area`` up to ``now_s``."""
        self.load_area += (self.in_flight + self.queued) * (now_s - self.last_change_s)
        self.last_change_s = now_s
        self.in_flight += delta

    def add_queued(self, delta: int, now_s: float) -> None:
        """Change ``queued``, first accruing ``load_area`` up to ``now_s``."""
        self.load_area += (self.in_flight + self.queued) * (now_s - self.last_change_s)
        self.last_change_s = now_s
        self.queued += delta

    def observe_service(self, service_s: float) -> None:
        """A primary upstream request answered after ``service_s``."""
        self.service_count += 1
        self.service_s_sum += service_s
        self.service_sq_s2_sum += service_s * service_s

    def complete(self, status: int, latency_s: float) -> None:
        """A response sent to the caller (any status) ``latency_s`` after arrival."""
        self.completions += 1
        if status >= 500:
            self.errors += 1
        codes = self.codes
        codes[status] = codes.get(status, 0) + 1
        self.latency_counts[bisect_left(LATENCY_BUCKETS_S, latency_s)] += 1
        self.latency_s_sum += latency_s

    @property
    def idle(self) -> bool:
        """Nothing in flight or held."""
        return self.in_flight == 0 and self.queued == 0

    def to_json(self, now_s: float) -> dict[str, object]:
        """The stats API form, with ``load_area`` accrued up to ``now_s``."""
        self.add_in_flight(0, now_s)
        return {
            "in_flight": self.in_flight,
            "queued": self.queued,
            "arrivals": self.arrivals,
            "completions": self.completions,
            "errors": self.errors,
            "rejected": self.rejected,
            "timeouts": self.timeouts,
            "moved": self.moved,
            "service_count": self.service_count,
            "service_s_sum": self.service_s_sum,
            "service_sq_s2_sum": self.service_sq_s2_sum,
            "load_area": self.load_area,
            "latency_buckets": list(self.latency_counts),
            "shadow": {
                "sent": self.shadow_sent,
                "agreed": self.shadow_agreed,
                "disagreed": self.shadow_disagreed,
                "failed": self.shadow_failed,
                "dropped": self.shadow_dropped,
            },
        }
