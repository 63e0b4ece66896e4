"""The async batcher: concurrent requests coalesced, each answered with its own rows."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from modelyard.core.errors import Unavailable
from modelyard.serving._batcher import Batcher
from modelyard.serving._batching import INLINE_MIN_SAMPLES


class GatedModel:
    """Echoes column 0; the first call blocks until ``gate`` is set, so requests pile up."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.batch_rows: list[int] = []
        self.fail_on: float | None = None

    def predict(self, rows: np.ndarray) -> np.ndarray:
        self.gate.wait(10)
        self.batch_rows.append(len(rows))
        if self.fail_on is not None and (rows[:, 0] == self.fail_on).any():
            raise ValueError("poisoned batch")
        return rows[:, 0].copy()


def rows_for(ident: int, n: int) -> np.ndarray:
    return np.column_stack([np.full(n, float(ident)), np.arange(n, dtype=float)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_concurrent_requests_are_coalesced_and_answered_with_their_own_rows(seed: int) -> None:
    rng = random.Random(seed)
    sizes = [rng.randint(1, 20) for _ in range(150)]
    model = GatedModel()

    async def main() -> list[np.ndarray]:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(model.predict, pool, max_batch_size=16, max_latency_ms=5)
            batcher.start()
            tasks = [
                asyncio.ensure_future(batcher.submit(rows_for(i, n))) for i, n in enumerate(sizes)
            ]
            await asyncio.sleep(0)  # let every request reach the queue
            model.gate.set()
            results = await asyncio.gather(*tasks)
            await batcher.stop()
            return results

    results = asyncio.run(main())
    for ident, (n, result) in enumerate(zip(sizes, results, strict=True)):
        assert result.tolist() == [float(ident)] * n
    assert max(model.batch_rows) <= 16
    assert sum(model.batch_rows) == sum(sizes) + 0  # every row predicted exactly once
    chunks = sum(-(-n // 16) for n in sizes)  # what one predict per request (chunk) costs
    assert len(model.batch_rows) < chunks  # requests were actually coalesced


def test_a_request_bigger_than_the_limit_is_split_but_answered_whole() -> None:
    model = GatedModel()
    model.gate.set()

    async def main() -> np.ndarray:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(model.predict, pool, max_batch_size=8, max_latency_ms=5)
            batcher.start()
            data = np.column_stack([np.arange(30.0), np.zeros(30)])
            result = await batcher.submit(data)
            await batcher.stop()
            return result

    assert asyncio.run(main()).tolist() == list(np.arange(30.0))
    assert max(model.batch_rows) <= 8


def test_a_model_error_fails_only_its_batch_and_the_batcher_goes_on() -> None:
    model = GatedModel()
    model.fail_on = 666.0

    async def main() -> tuple[list[object], np.ndarray]:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(model.predict, pool, max_batch_size=4, max_latency_ms=5)
            batcher.start()
            first = asyncio.ensure_future(batcher.submit(rows_for(666, 4)))
            await asyncio.sleep(0)
            model.gate.set()
            outcomes = await asyncio.gather(first, return_exceptions=True)
            after = await batcher.submit(rows_for(7, 2))
            await batcher.stop()
            return outcomes, after

    outcomes, after = asyncio.run(main())
    assert isinstance(outcomes[0], ValueError)
    assert after.tolist() == [7.0, 7.0]


def test_stop_finishes_queued_requests_then_refuses_new_ones() -> None:
    model = GatedModel()

    async def main() -> tuple[list[np.ndarray], BaseException | None]:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(model.predict, pool, max_batch_size=4, max_latency_ms=5)
            batcher.start()
            tasks = [asyncio.ensure_future(batcher.submit(rows_for(i, 1))) for i in range(10)]
            await asyncio.sleep(0)
            stopping = asyncio.ensure_future(batcher.stop())
            await asyncio.sleep(0)
            model.gate.set()
            await stopping
            refused: BaseException | None = None
            try:
                await batcher.submit(rows_for(99, 1))
            except Unavailable as exc:
                refused = exc
            return list(await asyncio.gather(*tasks)), refused

    results, refused = asyncio.run(main())
    assert [r.tolist() for r in results] == [[float(i)] for i in range(10)]
    assert isinstance(refused, Unavailable)


class FakeClock:
    """Real time plus whatever the models were made to cost (``extra``)."""

    def __init__(self) -> None:
        self.extra = 0.0

    def __call__(self) -> float:
        return time.perf_counter() + self.extra


class CostedModel:
    """Echoes column 0; each call takes ``costs_s[i]`` seconds of the fake clock (the last
    cost repeats) and records the thread it ran in."""

    def __init__(self, clock: FakeClock, costs_s: list[float]) -> None:
        self.clock = clock
        self.costs_s = costs_s
        self.threads: list[int] = []

    def predict(self, rows: np.ndarray) -> np.ndarray:
        self.clock.extra += self.costs_s[min(len(self.threads), len(self.costs_s) - 1)]
        self.threads.append(threading.get_ident())
        return rows[:, 0].copy()


# Far above any real scheduling delay, so a preempted test thread cannot change the verdict.
THRESHOLD_S = 0.5


def run_one_at_a_time(model: CostedModel, clock: FakeClock, n: int, inline_below_s: float) -> int:
    """Send ``n`` requests one after the other (one batch each); the loop's thread id."""

    async def main() -> int:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(
                model.predict, pool, max_batch_size=8, max_latency_ms=5,
                inline_below_s=inline_below_s, clock=clock,
            )  # fmt: skip
            batcher.start()
            for i in range(n):
                assert (await batcher.submit(rows_for(i, 2)) == i).all()
            await batcher.stop()
        return threading.get_ident()

    return asyncio.run(main())


def test_batches_expected_shorter_than_the_threshold_run_on_the_event_loop() -> None:
    clock = FakeClock()
    model = CostedModel(clock, [10e-6])
    loop_thread = run_one_at_a_time(model, clock, INLINE_MIN_SAMPLES + 5, THRESHOLD_S)
    # The first batches always go to a thread: the latency model has to learn first.
    assert loop_thread not in model.threads[:INLINE_MIN_SAMPLES]
    assert model.threads[INLINE_MIN_SAMPLES:] == [loop_thread] * 5


@pytest.mark.parametrize(
    ("cost_s", "inline_below_s"), [(2 * THRESHOLD_S, THRESHOLD_S), (10e-6, 0.0)]
)
def test_slow_batches_or_inline_switched_off_always_use_a_thread(
    cost_s: float, inline_below_s: float
) -> None:
    clock = FakeClock()
    model = CostedModel(clock, [cost_s])
    loop_thread = run_one_at_a_time(model, clock, INLINE_MIN_SAMPLES + 5, inline_below_s)
    assert loop_thread not in model.threads


def test_a_model_that_turns_slow_blocks_the_loop_for_one_batch_only() -> None:
    clock = FakeClock()
    costs = [10e-6] * (INLINE_MIN_SAMPLES + 2) + [100 * THRESHOLD_S]  # then slow for good
    model = CostedModel(clock, costs)
    loop_thread = run_one_at_a_time(model, clock, INLINE_MIN_SAMPLES + 12, THRESHOLD_S)
    first_slow = INLINE_MIN_SAMPLES + 2
    assert model.threads[first_slow] == loop_thread  # it was expected to be fast
    assert loop_thread not in model.threads[first_slow + 1 :]


def test_one_hiccup_does_not_move_a_fast_model_off_the_loop() -> None:
    clock = FakeClock()
    hiccup = INLINE_MIN_SAMPLES + 2
    costs = [10e-6] * hiccup + [0.4 * THRESHOLD_S * 10] + [10e-6]
    model = CostedModel(clock, costs)
    loop_thread = run_one_at_a_time(model, clock, hiccup + 10, THRESHOLD_S)
    assert model.threads[hiccup:] == [loop_thread] * 10
