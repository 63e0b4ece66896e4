"""Wake signals: edge-triggered, at most one per second per revision, to every poll."""

from __future__ import annotations

import asyncio

from modelyard.core.clock import FakeClock
from modelyard.gateway._wakeups import Wakeups


def _wakeups(clock: FakeClock, held: list[tuple[str, int, int]] | None = None) -> Wakeups:
    return Wakeups(lambda: list(held or []), clock=clock.monotonic)


def test_a_signal_waits_for_the_next_poll(fake_clock: FakeClock) -> None:
    wakeups = _wakeups(fake_clock)
    wakeups.signal("churn", 2, 3)
    assert wakeups.take() == [{"deployment": "churn", "revision": 2, "queued": 3}]
    assert wakeups.take() == []


def test_signals_are_rate_limited_per_revision(fake_clock: FakeClock) -> None:
    wakeups = _wakeups(fake_clock)
    wakeups.signal("churn", 1, 1)
    wakeups.take()
    fake_clock.advance(0.5)
    wakeups.signal("churn", 1, 2)
    wakeups.signal("churn", 2, 1)  # another revision is not limited
    assert wakeups.take() == [{"deployment": "churn", "revision": 2, "queued": 1}]
    fake_clock.advance(0.6)
    wakeups.signal("churn", 1, 4)
    assert wakeups.take() == [{"deployment": "churn", "revision": 1, "queued": 4}]


def test_held_revisions_are_re_signalled_once_a_second(fake_clock: FakeClock) -> None:
    held = [("churn", 1, 5)]
    wakeups = _wakeups(fake_clock, held)
    assert wakeups.take() == [{"deployment": "churn", "revision": 1, "queued": 5}]
    fake_clock.advance(0.4)
    assert wakeups.take() == []
    fake_clock.advance(0.6)
    assert wakeups.take() == [{"deployment": "churn", "revision": 1, "queued": 5}]


def test_every_waiting_poll_gets_the_signal(fake_clock: FakeClock) -> None:
    wakeups = _wakeups(fake_clock)

    async def scenario() -> list[list[dict[str, object]]]:
        polls = [asyncio.create_task(wakeups.wait(30.0)) for _ in range(3)]
        await asyncio.sleep(0)  # let the polls start waiting
        wakeups.signal("churn", 7, 1)
        return list(await asyncio.gather(*polls))

    results = asyncio.run(scenario())
    assert results == [[{"deployment": "churn", "revision": 7, "queued": 1}]] * 3


def test_a_poll_with_nothing_to_report_returns_empty(fake_clock: FakeClock) -> None:
    wakeups = _wakeups(fake_clock)
    assert asyncio.run(wakeups.wait(0.0)) == []
