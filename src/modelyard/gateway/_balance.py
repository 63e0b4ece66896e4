"""Pure load-balancing decisions: a weighted revision, the least-loaded replica."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Container, Sequence
from typing import Protocol, TypeVar

# Ejected replicas lose to any healthy one, whatever their load.
_EJECTED_PENALTY = 1 << 40


class Balanced(Protocol):
    """What :func:`least_outstanding` reads from a replica."""

    @property
    def id(self) -> str: ...

    @property
    def in_flight(self) -> int: ...

    @property
    def ejected_until_s(self) -> float: ...


R = TypeVar("R", bound=Balanced)


def cumulative_weights(weights: Sequence[int]) -> list[int]:
    """Running totals of ``weights``, the table :func:`weighted_index` searches."""
    totals: list[int] = []
    running = 0
    for weight in weights:
        if weight < 0:
            raise ValueError(f"weights cannot be negative, got {weight}")
        running += weight
        totals.append(running)
    return totals


def weighted_index(cumulative: Sequence[int], point: float) -> int:
    """The index whose weight interval holds ``point``.

    Args:
        cumulative: From :func:`cumulative_weights`; the last entry is the total.
        point: Uniform in ``[0, total)``, e.g. ``random() * total``.

    Returns:
        ``i`` with ``cumulative[i-1] <= point < cumulative[i]``; zero weights are never
        chosen.
    """
    index = bisect_right(cumulative, point)
    return min(index, len(cumulative) - 1)


def least_outstanding(
    replicas: Sequence[R], start: int, now_s: float, tried: Container[str] | None = None
) -> R | None:
    """The replica with the fewest requests in flight.

    Replicas in ``tried`` are skipped; ejected ones (``ejected_until_s > now_s``, recently
    failed) are chosen only when nothing else is left. Ties go to the first one met
    scanning from ``start`` (a rotating offset), which spreads them round-robin.

    Returns:
        The replica, or None when every one was tried (or there are none).
    """
    count = len(replicas)
    best: R | None = None
    best_load = 0
    for k in range(count):
        replica = replicas[(start + k) % count]
        if tried is not None and replica.id in tried:
            continue
        load = replica.in_flight
        if replica.ejected_until_s > now_s:
            load += _EJECTED_PENALTY
        if best is None or load < best_load:
            best, best_load = replica, load
    return best
