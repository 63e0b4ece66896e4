"""Queueing arithmetic for sizing: Erlang C (M/M/N) and the idle-gap histogram."""

from __future__ import annotations

import math
from dataclasses import dataclass


def slots_for_wait(
    offered_load: float,
    wait_budget_s: float,
    service_s: float,
    miss_budget: float,
    service_scv: float = 1.0,
) -> int:
    """The fewest servers (request slots) that keep ``P(wait > wait_budget_s) <= miss_budget``.

    Uses the M/M/N (Erlang C) tail ``P(W > t) = C(N, A) * exp(-(N - A) * t / S)`` with
    offered load ``A = arrival rate * mean service time`` in Erlangs: square-root staffing
    made exact, so headroom grows like ``sqrt(A)``, not in proportion to ``A``. For
    service times that vary less (or more) than exponential ones, the wait scales by the
    Allen-Cunneen factor ``(1 + scv) / 2`` (Poisson arrivals assumed).

    Args:
        offered_load: ``A``, the mean number of requests in service if none waited.
        wait_budget_s: queueing delay allowed before a request misses its SLO.
        service_s: mean service time.
        miss_budget: the probability of missing that may be spent on queueing.
        service_scv: squared coefficient of variation of the service time (1: exponential).

    Returns:
        The number of slots; 0 when there is no load.
    """
    if offered_load <= 0:
        return 0
    wait_scale = max((1.0 + max(service_scv, 0.0)) / 2.0, 0.5)
    decay = max(wait_budget_s, 0.0) / max(service_s * wait_scale, 1e-9)
    erlang_b = 1.0
    n = 0
    limit = int(offered_load + 12.0 * math.sqrt(offered_load) + 32.0)
    while n < limit:
        n += 1
        erlang_b = offered_load * erlang_b / (n + offered_load * erlang_b)
        if n <= offered_load:
            continue
        erlang_c = n * erlang_b / (n - offered_load * (1.0 - erlang_b))
        if erlang_c * math.exp(-(n - offered_load) * decay) <= miss_budget:
            return n
    return limit


# Log-spaced bins: 0.25 s * 2**(k/4), up to about 4 hours (the range of "Serverless in the
# Wild"); gaps past the last edge are counted as out of bounds.
_BIN_BASE_S = 0.25
_BINS_PER_DOUBLING = 4
_N_BINS = 4 * 16  # 0.25 s * 2**16 = 16384 s, about 4.5 h


def _bin_of(gap_s: float) -> int:
    if gap_s <= _BIN_BASE_S:
        return 0
    return int(math.log2(gap_s / _BIN_BASE_S) * _BINS_PER_DOUBLING) + 1


def _upper_edge_s(index: int) -> float:
    return float(_BIN_BASE_S * 2.0 ** (index / _BINS_PER_DOUBLING))


@dataclass(frozen=True, slots=True)
class IdleGapHistogram:
    """Counts of observed idle gaps (no request in the system → next arrival).

    Immutable: :meth:`add` returns a new histogram. Counts are halved once they pass
    ``max_total`` so the distribution follows a workload that changes.
    """

    counts: tuple[int, ...] = (0,) * _N_BINS
    out_of_bounds: int = 0
    max_total: int = 2000

    @property
    def total(self) -> int:
        return sum(self.counts) + self.out_of_bounds

    def add(self, gap_s: float) -> IdleGapHistogram:
        index = _bin_of(gap_s)
        counts, oob = self.counts, self.out_of_bounds
        if index >= _N_BINS:
            oob += 1
        else:
            counts = (*counts[:index], counts[index] + 1, *counts[index + 1 :])
        if sum(counts) + oob > self.max_total:
            counts = tuple(c // 2 for c in counts)
            oob //= 2
        return IdleGapHistogram(counts, oob, self.max_total)

    def quantile_s(self, q: float) -> float:
        """Upper edge of the bin holding quantile ``q`` (``inf`` if it is out of bounds)."""
        need = q * self.total
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if count and seen >= need:
                return _upper_edge_s(index)
        return math.inf

    def lower_quantile_s(self, q: float) -> float:
        """Lower edge of the bin holding quantile ``q``: a conservative head of the gaps."""
        upper = self.quantile_s(q)
        if math.isinf(upper):
            return upper
        return upper / 2.0 ** (1.0 / _BINS_PER_DOUBLING) if upper > _BIN_BASE_S else 0.0
