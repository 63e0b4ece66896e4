"""The async side of adaptive batching: a queue, one decision loop, inference in threads.

Requests ``submit`` an array of rows and await their own slice of the batch's
prediction. The loop asks :func:`modelyard.serving._batching.decide` what to do and
otherwise waits on an :class:`asyncio.Event` that arrivals and finished batches set (with
a timer only for the decision's ``wake_at_s``) — never a polling sleep. A batch the
latency model expects to be shorter than the thread hand-over itself runs on the loop
(:func:`modelyard.serving._batching.runs_inline`). Its duration feeds the same model (the
newest batch weighs ~5 % of the estimate), so a model that turns much slower (by 20 times the
threshold or more) holds the loop for one batch and one that turns a little slower for a
few, after which its batches go to a thread; a single hiccup (the process preempted, a
collection) shifts the estimate only a little.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from modelyard.core.errors import Unavailable
from modelyard.serving._batching import GapEstimate, LatencyModel, Pending, decide, runs_inline
from modelyard.serving._types import Array

PredictFn = Callable[[Array], Array]


@dataclass(slots=True, eq=False)
class _Item(Pending):
    data: Array
    future: asyncio.Future[Array]


class Batcher:
    """Coalesces concurrent requests into batches of at most ``max_batch_size`` rows.

    Args:
        predict: The model call; receives the rows of a batch stacked along axis 0 and
            returns one prediction (row) per input row. Runs in ``executor``.
        executor: Where inference runs; ``lanes`` batches may run at once.
        max_batch_size: The most rows one ``predict`` call gets.
        max_latency_ms: The budget for queueing plus inference of a request.
        lanes: How many batches may be in flight at once (the executor's threads).
        on_batch: Called with each batch's row count (metrics).
        inline_below_s: Batches expected to take at most this long run on the event
            loop instead of a thread (0: never).
        clock: Monotonic seconds; injected for tests.
    """

    def __init__(
        self,
        predict: PredictFn,
        executor: Executor,
        *,
        max_batch_size: int,
        max_latency_ms: float,
        lanes: int = 1,
        on_batch: Callable[[int], None] | None = None,
        inline_below_s: float = 0.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if max_batch_size < 1 or lanes < 1:
            raise ValueError("max_batch_size and lanes must be at least 1")
        self._predict = predict
        self._executor = executor
        self.max_batch_size = max_batch_size
        self._max_latency_s = max_latency_ms / 1000.0
        self._lanes = lanes
        self._busy = 0
        self._on_batch = on_batch
        self.inline_below_s = inline_below_s
        self._clock = clock
        self._queue: deque[_Item] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._running: set[asyncio.Task[None]] = set()
        self.latency = LatencyModel()
        self.gaps = GapEstimate()

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a batch."""
        return len(self._queue)

    def start(self) -> None:
        """Start the decision loop on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Refuse new requests, finish the queued and running ones, stop the loop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def submit(self, rows: Array) -> Awaitable[Array]:
        """Queue ``rows``; the awaitable gives their predictions, in order.

        A request with more rows than ``max_batch_size`` is split into chunks that each
        fit, so no batch ever exceeds the limit. (A plain function returning the future,
        not a coroutine: one frame less on the hot path.)

        Raises:
            Unavailable: the batcher is shutting down (raised by the call itself).
            Exception: whatever the model raised for the batch holding these rows (raised
                by awaiting the result).
        """
        if self._closing:
            raise Unavailable("the server is shutting down")
        if rows.shape[0] > self.max_batch_size:
            return self._submit_split(rows)
        return self._enqueue(rows)

    async def _submit_split(self, rows: Array) -> Array:
        size = self.max_batch_size
        parts = [self._enqueue(rows[i : i + size]) for i in range(0, int(rows.shape[0]), size)]
        return np.concatenate(await asyncio.gather(*parts))

    def _enqueue(self, rows: Array) -> asyncio.Future[Array]:
        now = self._clock()
        future: asyncio.Future[Array] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(now, int(rows.shape[0]), rows, future))
        self.gaps.arrival(now)
        self._wakeup.set()
        return future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wakeup.clear()
            decision = decide(
                self._clock(),
                self._queue,
                lane_free=self._busy < self._lanes,
                model=self.latency,
                mean_gap_s=self.gaps.mean_s,
                max_batch_size=self.max_batch_size,
                max_latency_s=self._max_latency_s,
            )
            if decision.take:
                batch = [self._queue.popleft() for _ in range(decision.take)]
                rows = sum(item.rows for item in batch)
                if runs_inline(rows, self.latency, self.inline_below_s):
                    self._run_inline(batch, rows)
                    continue
                self._busy += 1
                task = loop.create_task(self._run(batch, rows))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
                continue
            if self._closing and not self._queue:
                return
            timer = None
            if decision.wake_at_s is not None:
                delay = max(decision.wake_at_s - self._clock(), 0.0)
                timer = loop.call_later(delay, self._wakeup.set)
            await self._wakeup.wait()
            if timer is not None:
                timer.cancel()

    async def _run(self, batch: list[_Item], rows: int) -> None:
        """Run a batch in an inference thread and answer its requests."""
        try:
            loop = asyncio.get_running_loop()
            result, duration_s = await loop.run_in_executor(
                self._executor, self._timed, _stacked(batch)
            )
        except Exception as exc:
            _fail(batch, exc)
            return
        finally:
            self._busy -= 1
            self._wakeup.set()
        self._deliver(batch, rows, result, duration_s)

    def _run_inline(self, batch: list[_Item], rows: int) -> None:
        """Run a batch on the event loop (it is expected to be shorter than a hand-over)."""
        try:
            result, duration_s = self._timed(_stacked(batch))
        except Exception as exc:
            _fail(batch, exc)
            return
        self._deliver(batch, rows, result, duration_s)

    def _deliver(self, batch: list[_Item], rows: int, result: Array, duration_s: float) -> None:
        """Give each request its own slice of the batch's predictions."""
        if len(result) != rows:
            error = RuntimeError(f"the model returned {len(result)} predictions for {rows} rows")
            _fail(batch, error)
            return
        self.latency.observe(rows, duration_s)
        if self._on_batch is not None:
            self._on_batch(rows)
        offset = 0
        for item in batch:
            if not item.future.done():  # a disconnected client's future may be cancelled
                item.future.set_result(result[offset : offset + item.rows])
            offset += item.rows

    def _timed(self, data: Array) -> tuple[Array, float]:
        """``predict`` and its duration, measured where it runs (the inference thread,
        or the loop): the latency model is of the model's cost, not of how long the
        event loop took to notice."""
        start = self._clock()
        result = self._predict(data)
        return result, self._clock() - start


def _stacked(batch: list[_Item]) -> Array:
    return batch[0].data if len(batch) == 1 else np.concatenate([i.data for i in batch])


def _fail(batch: list[_Item], exc: Exception) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)


def run_direct(predict: PredictFn, executor: Executor, rows: Array) -> Awaitable[Array]:
    """Batching switched off: one ``predict`` per request, in ``executor``."""
    return asyncio.get_running_loop().run_in_executor(executor, predict, rows)
