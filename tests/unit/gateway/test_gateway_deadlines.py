"""The deadline wheel: one timer, O(1) removal, nothing fires early or twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from modelyard.core.clock import FakeClock
from modelyard.gateway._deadlines import Deadlines


class FakeHandle:
    def __init__(self, delay_s: float, callback: Callable[[], None]) -> None:
        self.delay_s = delay_s
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """Records timers; the test fires them by hand."""

    def __init__(self) -> None:
        self.timers: list[FakeHandle] = []

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> FakeHandle:
        handle = FakeHandle(delay_s, callback)
        self.timers.append(handle)
        return handle

    def live(self) -> list[FakeHandle]:
        return [t for t in self.timers if not t.cancelled]


class Request:
    def __init__(self, name: str, fired: list[str]) -> None:
        self.name = name
        self.slot: int | None = None
        self._fired = fired

    def expire(self) -> None:
        self._fired.append(self.name)


def _wheel(clock: FakeClock) -> tuple[Deadlines, FakeLoop]:
    loop = FakeLoop()
    wheel = Deadlines(
        cast(asyncio.AbstractEventLoop, loop), clock=clock.monotonic, granularity_s=0.1
    )
    return wheel, loop


def _fire(loop: FakeLoop, clock: FakeClock) -> None:
    (timer,) = loop.live()
    clock.advance(timer.delay_s)
    timer.cancelled = True
    timer.callback()


def test_one_timer_serves_many_deadlines(fake_clock: FakeClock) -> None:
    wheel, loop = _wheel(fake_clock)
    fired: list[str] = []
    for i in range(100):
        wheel.add(Request(str(i), fired), fake_clock.monotonic() + 60.0)
    assert len(loop.live()) == 1
    assert len(wheel) == 100
    _fire(loop, fake_clock)
    assert sorted(fired, key=int) == [str(i) for i in range(100)]
    assert len(wheel) == 0
    assert loop.live() == []


def test_removed_requests_never_fire_and_nothing_fires_early(fake_clock: FakeClock) -> None:
    wheel, loop = _wheel(fake_clock)
    fired: list[str] = []
    now = fake_clock.monotonic()
    early, kept, late = Request("early", fired), Request("kept", fired), Request("late", fired)
    wheel.add(early, now + 1.0)
    wheel.add(kept, now + 1.05)
    wheel.add(late, now + 5.0)
    wheel.remove(early)
    wheel.remove(early)  # twice is harmless
    _fire(loop, fake_clock)
    assert fake_clock.monotonic() >= now + 1.05
    assert fired == ["kept"]
    _fire(loop, fake_clock)  # re-armed for the next slot
    assert fake_clock.monotonic() >= now + 5.0
    assert fired == ["kept", "late"]


def test_an_earlier_deadline_re_arms_the_timer(fake_clock: FakeClock) -> None:
    wheel, loop = _wheel(fake_clock)
    fired: list[str] = []
    now = fake_clock.monotonic()
    wheel.add(Request("slow", fired), now + 30.0)
    wheel.add(Request("fast", fired), now + 0.3)
    _fire(loop, fake_clock)
    assert fired == ["fast"]
    assert fake_clock.monotonic() < now + 1.0
    _fire(loop, fake_clock)
    assert fired == ["fast", "slow"]


def test_close_drops_everything(fake_clock: FakeClock) -> None:
    wheel, loop = _wheel(fake_clock)
    wheel.add(Request("x", []), fake_clock.monotonic() + 1.0)
    wheel.close()
    assert loop.live() == []
    assert len(wheel) == 0
