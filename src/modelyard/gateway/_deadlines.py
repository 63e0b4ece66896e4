"""Request deadlines on a coarse timing wheel, with one event-loop timer for all of them.

A loop timer per request costs an allocation and a libuv handle each; here a request is
one dict entry in the slot of its deadline (``granularity_s`` wide), removed in O(1) when
it is answered, and a single timer is armed for the earliest slot. Deadlines fire at
most one slot late.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

DEFAULT_GRANULARITY_S = 0.02


class Expiring(Protocol):
    """Something with a deadline: ``slot`` is the wheel's bookkeeping (None: not in it)."""

    slot: int | None

    def expire(self) -> None:
        """The deadline passed."""
        ...


class Deadlines:
    """Deadlines of in-flight requests.

    Args:
        loop: The event loop whose timer fires expired slots.
        clock: Monotonic seconds, the same clock deadlines are given in.
        granularity_s: The slot width.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        clock: Callable[[], float] = time.monotonic,
        granularity_s: float = DEFAULT_GRANULARITY_S,
    ) -> None:
        self._loop = loop
        self._clock = clock
        self._granularity_s = granularity_s
        self._slots: dict[int, dict[Expiring, None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_slot: int | None = None

    def add(self, item: Expiring, deadline_s: float) -> None:
        """Call ``item.expire()`` once ``deadline_s`` has passed, unless removed first."""
        slot = int(deadline_s / self._granularity_s) + 1
        entries = self._slots.get(slot)
        if entries is None:
            entries = self._slots[slot] = {}
            if self._armed_slot is None or slot < self._armed_slot:
                self._arm(slot)
        entries[item] = None
        item.slot = slot

    def remove(self, item: Expiring) -> None:
        """Forget ``item``'s deadline (no-op if it has none)."""
        slot = item.slot
        if slot is None:
            return
        item.slot = None
        entries = self._slots.get(slot)
        if entries is not None:
            entries.pop(item, None)
            if not entries:
                del self._slots[slot]

    def close(self) -> None:
        """Stop the timer; pending deadlines never fire."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._armed_slot = None
        self._slots.clear()

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._slots.values())

    def _arm(self, slot: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_slot = slot
        delay_s = max(0.0, slot * self._granularity_s - self._clock())
        self._timer = self._loop.call_later(delay_s, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._armed_slot = None
        # A hair of slack: float rounding must not leave a due slot for another round.
        now_slot = int(self._clock() / self._granularity_s + 1e-6)
        for slot in sorted(s for s in self._slots if s <= now_slot):
            entries = self._slots.pop(slot, None)
            for item in list(entries or ()):
                if item.slot == slot:
                    item.slot = None
                    item.expire()
        if self._slots and self._armed_slot is None:
            self._arm(min(self._slots))
