"""One served model: its name and version, the input spec, and how inference runs.

Inference runs in a :class:`~concurrent.futures.ThreadPoolExecutor` with ``threads``
threads (never on the event loop), through the adaptive :class:`Batcher` unless batching
is off. Models whose signature is not all-numeric take the generic path: the decoded
payload goes to :meth:`modelyard.models.LoadedModel.predict` (pandas validation), one
request per call.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from modelyard.serving._batcher import Batcher, PredictFn, run_direct
from modelyard.serving._inputs import InputSpec, input_spec
from modelyard.serving._predict import array_predict
from modelyard.serving._types import Array
from modelyard.serving.options import RuntimeOptions

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from modelyard.models import LoadedModel


class ModelRuntime:
    """A loaded model ready for requests.

    Args:
        model: The verified, loaded package.
        name: The OIP model name (the registered name, or the package directory's name).
        version: The OIP version (the registered version number, or ``"1"``).
        options: Batching and threads.
        on_batch: Called with each batch's row count (metrics).
    """

    def __init__(
        self,
        model: LoadedModel,
        name: str,
        version: str,
        options: RuntimeOptions,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.model = model
        self.name = name
        self.version = version
        self.options = options
        self.spec: InputSpec | None = input_spec(model.signature)
        self._executor = ThreadPoolExecutor(options.threads, thread_name_prefix="inference")
        self._predict: PredictFn = array_predict(model, self.spec)
        self.batcher: Batcher | None = None
        if options.batching and self.spec is not None:
            self.batcher = Batcher(
                self._predict,
                self._executor,
                max_batch_size=options.max_batch_size,
                max_latency_ms=options.max_latency_ms,
                lanes=options.threads,
                on_batch=on_batch,
                inline_below_s=options.inline_below_us / 1e6,
            )
        self._on_batch = on_batch
        self.ready = False

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a batch."""
        return 0 if self.batcher is None else self.batcher.queue_depth

    async def start(self) -> None:
        """Warm the model up with one row of zeros (when the input is numeric), then
        start batching and mark the runtime ready."""
        if self.spec is not None:
            shape = tuple(1 if d == -1 else d for d in self.spec.shape)
            await run_direct(self._predict, self._executor, np.zeros(shape, self.spec.dtype))
        if self.batcher is not None:
            self.batcher.start()
        self.ready = True

    async def stop(self) -> None:
        """Finish queued and running requests, then release the threads."""
        self.ready = False
        if self.batcher is not None:
            await self.batcher.stop()
        self._executor.shutdown(wait=True)

    def infer(self, rows: Array) -> Awaitable[Array]:
        """Predict on validated rows (the fast path); await the result.

        Raises:
            Unavailable: the runtime is shutting down.
        """
        if self.batcher is not None:
            return self.batcher.submit(rows)
        return self._infer_direct(rows)

    async def _infer_direct(self, rows: Array) -> Array:
        result = await run_direct(self._predict, self._executor, rows)
        if self._on_batch is not None:
            self._on_batch(int(rows.shape[0]))
        return result

    async def infer_generic(self, payload: object) -> Array:
        """Validate and predict with :meth:`LoadedModel.predict` (no numeric signature)."""
        model = self.model

        def call() -> Array:
            return np.asarray(model.predict(payload))  # type: ignore[arg-type]

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)
