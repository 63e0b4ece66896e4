"""Background, batched, retried logging: ``log_metric`` returns in microseconds.

One thread per logger drains a buffer into batches (at most every ``flush_interval_s``,
or as soon as ``max_batch`` items wait) and sends them in order. Every batch carries an
idempotency key chosen before its first attempt, and a failed send is retried with the
same key and exponential backoff, so a batch is stored exactly once however often the
server dies or the network drops in between. Errors that retrying cannot fix (a param
re-set to another value, an invalid key) are kept and raised by ``flush``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from modelyard.core.errors import InvalidInput, ModelyardError, Unavailable
from modelyard.core.tracking import LogBatch, Metric

logger = logging.getLogger("modelyard.tracking")

SendBatch = Callable[[str, LogBatch], bool]
RETRYABLE = (Unavailable,)


def is_retryable(exc: ModelyardError) -> bool:
    """Transport failures and server-side errors are retried; client mistakes are not."""
    return isinstance(exc, RETRYABLE) or type(exc) is ModelyardError


def send_retried(send: Callable[[], object], timeout_s: float, max_backoff_s: float = 5.0) -> None:
    """Call ``send`` until it succeeds; retryable errors are retried with backoff for up to
    ``timeout_s`` (make the write idempotent: a batch_id), then the last one is raised."""
    deadline = time.monotonic() + timeout_s
    backoff_s = 0.1
    while True:
        try:
            send()
            return
        except ModelyardError as exc:
            if not is_retryable(exc) or time.monotonic() + backoff_s > deadline:
                raise
            logger.warning("retrying in %.1f s: %s", backoff_s, exc)
        time.sleep(backoff_s)
        backoff_s = min(backoff_s * 2, max_backoff_s)


@dataclass
class _Buffer:
    # Plain tuples in a deque: appending needs no lock (deque.append is atomic) and no
    # object construction, which keeps ``log_metric`` at a couple of microseconds.
    metrics: deque[tuple[str, float, int, int]] = field(default_factory=deque)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)

    def take(self, limit: int) -> LogBatch:
        popleft = self.metrics.popleft
        make = Metric._make
        metrics = [make(popleft()) for _ in range(min(limit, len(self.metrics)))]
        room = max(0, limit - len(metrics))
        params = list(self.params.items())[:room]
        for key, _ in params:
            del self.params[key]
        room -= len(params)
        tags = list(self.tags.items())[:room]
        for key, _ in tags:
            del self.tags[key]
        return LogBatch(tuple(metrics), tuple(params), tuple(tags), secrets.token_hex(16))


class BatchLogger:
    """Buffers one run's metrics, params and tags and ships them in the background."""

    def __init__(
        self,
        run_id: str,
        send: SendBatch,
        *,
        flush_interval_s: float = 1.0,
        max_batch: int = 10_000,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.run_id = run_id
        self._send = send
        self._interval_s = flush_interval_s
        self._max_batch = max_batch
        self._max_backoff_s = max_backoff_s
        self._buffer = _Buffer()
        self._metrics = self._buffer.metrics  # the hot path skips one attribute lookup
        self._cond = threading.Condition()
        self._in_flight = 0
        self._closing = False
        self._errors: list[ModelyardError] = []
        self._params_seen: dict[str, str] = {}
        self._thread = threading.Thread(
            target=self._run, name=f"modelyard-logger-{run_id[:8]}", daemon=True
        )
        self._thread.start()

    # --- the training loop's side: never blocks on I/O ----------------------------------

    def log_metric(self, key: str, value: float, step: int, timestamp_ms: int) -> None:
        metrics = self._metrics
        metrics.append((key, float(value), step, timestamp_ms))
        if len(metrics) >= self._max_batch:
            with self._cond:
                self._cond.notify()

    def log_param(self, key: str, value: str) -> None:
        """Buffer a param; a different value for a key set earlier fails here, at once."""
        with self._cond:
            earlier = self._params_seen.get(key)
            if earlier is not None and earlier != value:
                raise InvalidInput(
                    f"param {key!r} of run {self.run_id} is already {earlier!r}; "
                    f"params are immutable, cannot set it to {value!r}"
                )
            self._params_seen[key] = value
            self._buffer.params[key] = value

    def set_tag(self, key: str, value: str) -> None:
        with self._cond:
            self._buffer.tags[key] = value

    # --- flushing -----------------------------------------------------------------------

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until everything logged so far is stored.

        Raises:
            ModelyardError: a batch was rejected for a reason retrying cannot fix.
            Unavailable: ``timeout_s`` passed with data still unsent.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            self._cond.notify_all()
            while len(self._buffer) or self._in_flight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    pending = len(self._buffer) + self._in_flight
                    raise Unavailable(
                        f"{pending} logged items of run {self.run_id} are not stored yet: "
                        "the server is unreachable"
                    )
                self._cond.wait(remaining if remaining is not None else 1.0)
            if self._errors:
                errors, self._errors = self._errors, []
                raise errors[0]

    def close(self, timeout_s: float | None = None) -> None:
        """Flush, then stop the background thread."""
        try:
            self.flush(timeout_s)
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join(timeout=5)

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._buffer) + self._in_flight

    # --- the background thread ----------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if not len(self._buffer) and not self._closing:
                    self._cond.wait(self._interval_s)
                if self._closing and not len(self._buffer):
                    return
                if not len(self._buffer):
                    continue
                batch = self._buffer.take(self._max_batch)
                self._in_flight = len(batch.metrics) + len(batch.params) + len(batch.tags)
            self._deliver(batch)
            with self._cond:
                self._in_flight = 0
                self._cond.notify_all()

    def _deliver(self, batch: LogBatch) -> None:
        backoff_s = 0.1
        while True:
            try:
                self._send(self.run_id, batch)
                return
            except ModelyardError as exc:
                if not is_retryable(exc):
                    logger.error("run %s: batch rejected: %s", self.run_id, exc)
                    with self._cond:
                        self._errors.append(exc)
                    return
                logger.warning("run %s: retrying in %.1f s: %s", self.run_id, backoff_s, exc)
            except Exception as exc:  # a bug in a transport must not kill logging silently
                logger.exception("run %s: unexpected error sending a batch", self.run_id)
                with self._cond:
                    self._errors.append(ModelyardError(f"sending a batch failed: {exc}"))
                return
            with self._cond:
                if self._closing:  # close() gave up waiting: say what is lost, loudly
                    logger.error(
                        "run %s: server unreachable at close; %d logged items were not stored",
                        self.run_id,
                        len(batch.metrics) + len(batch.params) + len(batch.tags),
                    )
                    return
            time.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, self._max_backoff_s)
