"""The async batcher: concurrent requests coalesced, each answered with its own rows."""

from __future__ import annotations

import asyncio
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from modelyard.core.errors import Unavailable
from modelyard.serving._batcher import Batcher


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
