"""Wake signals: the gateway telling the controller a revision needs replicas now.

A signal is raised when a revision gets held requests while it has no ready replica, or
a shadow copy is dropped for lack of one. Signals are edge-triggered and rate-limited per
(deployment, revision) to one per ``resignal_s``; while requests stay held, each long
poll re-raises them once that interval has passed. A signal goes to every long poll
waiting at that moment; with none waiting it is kept for the next one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

WakeKey = tuple[str, int]
#: (deployment, revision, queued) of every revision with held requests.
HeldSnapshot = Callable[[], Iterable[tuple[str, int, int]]]


class Wakeups:
    """Pending wake signals and the long polls waiting for them.

    Args:
        held: Lists the revisions with held requests now.
        clock: Monotonic seconds.
        resignal_s: The least time between two signals for one revision.
    """

    def __init__(
        self,
        held: HeldSnapshot,
        *,
        clock: Callable[[], float] = time.monotonic,
        resignal_s: float = 1.0,
    ) -> None:
        self._held = held
        self._clock = clock
        self._resignal_s = resignal_s
        self._last_s: dict[WakeKey, float] = {}
        self._pending: dict[WakeKey, int] = {}
        self._waiters: list[asyncio.Future[dict[WakeKey, int]]] = []

    def signal(self, deployment: str, revision: int, queued: int) -> None:
        """Ask for replicas of a revision (dropped if it was asked for under a second ago)."""
        key = (deployment, revision)
        now = self._clock()
        last = self._last_s.get(key)
        if last is not None and now - last < self._resignal_s:
            return
        self._last_s[key] = now
        self._pending[key] = queued
        if self._waiters:
            batch, self._pending = self._pending, {}
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(batch)

    def take(self) -> list[dict[str, object]]:
        """Signals not yet delivered (re-raising held revisions that are due), cleared."""
        for deployment, revision, queued in self._held():
            self.signal(deployment, revision, queued)
        batch, self._pending = self._pending, {}
        return _items(batch)

    async def wait(self, timeout_s: float) -> list[dict[str, object]]:
        """The next signals, or ``[]`` after ``timeout_s``.

        Returns:
            ``[{"deployment": d, "revision": r, "queued": n}, ...]``.
        """
        loop = asyncio.get_running_loop()
        deadline = self._clock() + timeout_s
        while True:
            items = self.take()
            if items:
                return items
            remaining = deadline - self._clock()
            if remaining <= 0:
                return []
            waiter: asyncio.Future[dict[WakeKey, int]] = loop.create_future()
            self._waiters.append(waiter)
            try:
                # Wake at least every resignal_s to re-raise revisions still held.
                await asyncio.wait_for(asyncio.shield(waiter), min(remaining, self._resignal_s))
            except TimeoutError:
                pass
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled():
                return _items(waiter.result())
            waiter.cancel()


def _items(batch: dict[WakeKey, int]) -> list[dict[str, object]]:
    return [
        {"deployment": deployment, "revision": revision, "queued": queued}
        for (deployment, revision), queued in batch.items()
    ]
