"""Delivery: one notifier per target, and a dispatcher that retries in the background.

- :class:`Dispatcher` delivers in the background: ``submit`` never blocks, each target
  has its own FIFO lane (a target that hangs or is down delays only its own
  notifications, and a ``resolved`` never overtakes its ``firing``), failures are retried
  with exponential backoff and jitter, and every attempt is reported to a callback (the
  server writes them to the audit log and the alert or budget history).
- :class:`NotifierPool` keeps one notifier per target for a loop's lifetime, built from
  a webhook (URL and secret) or a registered action, so the monitor loop and the budget
  loop reach receivers the same way.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeAlias

from modelyard.core.errors import InvalidInput
from modelyard.core.monitoring import ActionRecord
from modelyard.notify._notification import DeliveryResult, Notification, Notifier, _failure
from modelyard.notify._notifiers import CommandAction, WebhookNotifier

_log = logging.getLogger("modelyard.notify")


# --- one notifier per target ---------------------------------------------------------


class NotifierPool:
    """One notifier object per target, kept for a loop's lifetime.

    The dispatcher keeps one ordered lane per target; building each target once (and
    the same way for every loop that notifies) keeps a target's notifications in order.
    Webhooks' per-attempt timeouts are capped at ``max_webhook_timeout_s``. Not
    thread-safe: one loop thread uses a pool.
    """

    def __init__(self, *, max_webhook_timeout_s: float = 30.0) -> None:
        self._max_webhook_timeout_s = max_webhook_timeout_s
        self._notifiers: dict[tuple[str, ...], Notifier] = {}

    def webhook(self, url: str, secret: str, timeout_s: float = 5.0) -> Notifier:
        """The signed-webhook notifier of ``url``.

        Raises:
            InvalidInput: a bad URL, an empty secret or a bad timeout.
        """
        timeout = min(float(timeout_s), self._max_webhook_timeout_s)
        key = ("webhook", url, secret, repr(timeout))
        found = self._notifiers.get(key)
        if found is None:
            found = self._notifiers[key] = WebhookNotifier(url, secret, timeout)
        return found

    def action(self, action: ActionRecord) -> Notifier:
        """The notifier of a registered action: its command, or its signed webhook.

        Raises:
            InvalidInput: the action's stored configuration is not usable.
        """
        config = action.config
        try:
            if action.kind == "webhook":
                return self.webhook(
                    str(config["url"]), str(config["secret"]), float(config.get("timeout_s", 5))
                )
            if action.kind == "command":
                argv = tuple(str(a) for a in config["argv"])
                timeout = float(config.get("timeout_s", 300))
            else:
                raise InvalidInput(f"action {action.name!r} has an unknown kind {action.kind!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"action {action.name!r} is misconfigured: {exc}") from None
        key = ("command", *argv, repr(timeout))
        found = self._notifiers.get(key)
        if found is None:
            found = self._notifiers[key] = CommandAction(argv, timeout, check_exists=False)
        return found


def describe_attempt(what: str, attempt: int, result: DeliveryResult, final: bool) -> str:
    """One history line for a delivery attempt of ``what`` (``firing p99_ms > 50 -> …``)."""
    if result.ok:
        return f"delivered {what} (attempt {attempt})"
    message = f"attempt {attempt} failed: {what}: {result.error}"
    return message + " (giving up)" if final else message


def attempt_record(
    target: Notifier, notification: Notification, attempt: int, result: DeliveryResult, final: bool
) -> dict[str, Any]:
    """The detail stored with a delivery attempt's history event."""
    return {
        "attempt": attempt,
        "final": final,
        "target": target.target,
        "delivery": notification.id,
        **result.to_json(),
    }


# --- the dispatcher ------------------------------------------------------------------

#: ``on_result(target, notification, attempt, result, final)``: called after every
#: attempt (``attempt`` counts from 1), and once with ``attempt=0`` and ``final=True``
#: for a notification that was dropped without an attempt.
OnResult: TypeAlias = Callable[[Notifier, Notification, int, DeliveryResult, bool], None]


def _log_result(
    target: Notifier, notification: Notification, attempt: int, result: DeliveryResult, final: bool
) -> None:
    level = logging.DEBUG if result.ok else logging.WARNING
    _log.log(
        level,
        "alert %s to %s: attempt %d %s%s",
        notification.id,
        target.target,
        attempt,
        "ok" if result.ok else f"failed ({result.error})",
        " (final)" if final else "",
    )


class _Lane:
    __slots__ = ("busy", "queue", "ready")

    def __init__(self) -> None:
        self.queue: deque[tuple[Notifier, Notification]] = deque()
        self.busy = False
        self.ready = False


class Dispatcher:
    """Delivers notifications in background threads, retrying with backoff.

    - :meth:`submit` never blocks. When ``queue_size`` notifications are already
      waiting (over all targets) or the dispatcher is closed, the notification is
      dropped and reported through ``on_result`` with ``attempt=0`` and ``final=True``,
      in the caller's thread.
    - Each target (by its :attr:`Notifier.target` description, so two notifier objects
      for the same URL or command share one) has a FIFO lane served by one worker at a
      time: notifications to one target arrive in order, and a target that hangs or is
      down delays only its own lane. ``workers`` lanes are served at once.
    - A failed attempt is retried while the result is ``retryable`` and fewer than
      ``max_attempts`` attempts were made, after ``backoff_delay(attempt)`` seconds:
      ``base_delay_s * 2^(attempt-1)`` capped at ``max_delay_s`` (1, 2, 4, 8, 16 s by
      default), times a random factor in ``[1 - jitter, 1 + jitter]``, and at least the
      receiver's ``Retry-After`` (capped at ``max_retry_after_s``).
    - Every attempt's result goes to ``on_result(target, notification, attempt, result,
      final)``; exceptions from the callback are logged, never raised.
    - :meth:`close` stops the workers: attempts under way finish, waits for a retry end
      at once, and every notification not yet delivered is reported as a final failure.
    """

    def __init__(
        self,
        on_result: OnResult | None = None,
        *,
        max_attempts: int = 6,
        base_delay_s: float = 1.0,
        max_delay_s: float = 16.0,
        jitter: float = 0.2,
        max_retry_after_s: float = 300.0,
        queue_size: int = 1000,
        workers: int = 4,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """
        Args:
            on_result: called after every attempt (see :data:`OnResult`); logs if None.
            max_attempts: attempts per notification, the first included (≥ 1).
            base_delay_s: the wait after the first failed attempt.
            max_delay_s: the longest wait between attempts.
            jitter: the random spread of each wait, a fraction in [0, 1).
            max_retry_after_s: the longest ``Retry-After`` honoured.
            queue_size: notifications that may wait, over all targets (≥ 1).
            workers: lanes served at once (≥ 1).
            sleep: waits between attempts; by default a wait that :meth:`close` cuts
                short. Tests pass one that records the delays and returns at once.
            rng: the jitter's random source.

        Raises:
            InvalidInput: a setting out of range.
        """
        if max_attempts < 1:
            raise InvalidInput(f"max_attempts must be ≥ 1, got {max_attempts}")
        if queue_size < 1 or workers < 1:
            raise InvalidInput("queue_size and workers must be ≥ 1")
        for name, value in (
            ("base_delay_s", base_delay_s),
            ("max_delay_s", max_delay_s),
            ("max_retry_after_s", max_retry_after_s),
        ):
            if not (math.isfinite(value) and value >= 0):
                raise InvalidInput(f"{name} must be a finite number ≥ 0, got {value!r}")
        if not (math.isfinite(jitter) and 0 <= jitter < 1):
            raise InvalidInput(f"jitter must be in [0, 1), got {jitter!r}")
        self._on_result: OnResult = on_result if on_result is not None else _log_result
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.jitter = jitter
        self.max_retry_after_s = max_retry_after_s
        self.queue_size = queue_size
        self._workers = workers
        self._stop = threading.Event()
        self._sleep: Callable[[float], object] = sleep if sleep is not None else self._stop.wait
        self._rng = rng if rng is not None else random.Random()
        self._cond = threading.Condition()
        self._lanes: dict[str, _Lane] = {}
        self._ready: deque[str] = deque()
        self._waiting = 0
        self._active = 0
        self._closed = False
        self._threads: list[threading.Thread] = []

    # -- public --

    @property
    def pending(self) -> int:
        """Notifications waiting or being delivered."""
        with self._cond:
            return self._waiting + self._active

    def backoff_delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        delay = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(attempt - 1, 60))
        delay *= 1.0 + self.jitter * (2.0 * self._rng.random() - 1.0)
        if retry_after_s is not None and retry_after_s > 0:
            delay = max(delay, min(retry_after_s, self.max_retry_after_s))
        return delay

    def submit(self, target: Notifier, notification: Notification) -> bool:
        """Queue a notification for a target; never blocks.

        Returns:
            True if queued; False if dropped (reported through ``on_result``).
        """
        with self._cond:
            if self._closed:
                reason = "dispatcher is closed; notification dropped"
            elif self._waiting >= self.queue_size:
                reason = f"dispatcher queue is full ({self.queue_size}); notification dropped"
            else:
                key = target.target
                lane = self._lanes.get(key)
                if lane is None:
                    lane = self._lanes[key] = _Lane()
                lane.queue.append((target, notification))
                self._waiting += 1
                if not lane.busy and not lane.ready:
                    lane.ready = True
                    self._ready.append(key)
                self._start_workers()
                self._cond.notify()
                return True
        self._report(target, notification, 0, _failure(reason), True)
        return False

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is waiting or being delivered; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._waiting == 0 and self._active == 0, timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Stop the workers and report what was not delivered.

        Returns:
            True if every worker stopped within ``timeout`` (a worker stuck in an
            attempt stops when the attempt's own timeout ends; workers are daemons).
        """
        with self._cond:
            first = not self._closed
            self._closed = True
            self._stop.set()
            dropped: list[tuple[Notifier, Notification]] = []
            if first:
                for lane in self._lanes.values():
                    dropped.extend(lane.queue)
                    lane.queue.clear()
                self._waiting = 0
                self._ready.clear()
            self._cond.notify_all()
        for target, notification in dropped:
            reason = "dispatcher closed before delivery"
            self._report(target, notification, 0, _failure(reason), True)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- workers --

    def _start_workers(self) -> None:
        if self._threads:
            return
        for i in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"modelyard-alerts-{i}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._ready and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                key = self._ready.popleft()
                lane = self._lanes[key]
                lane.ready = False
                target, notification = lane.queue.popleft()
                self._waiting -= 1
                self._active += 1
                lane.busy = True
            try:
                self._deliver(target, notification)
            finally:
                with self._cond:
                    lane.busy = False
                    self._active -= 1
                    if lane.queue and not self._closed:
                        lane.ready = True
                        self._ready.append(key)
                    elif not lane.queue:
                        del self._lanes[key]
                    self._cond.notify_all()

    def _deliver(self, target: Notifier, notification: Notification) -> None:
        attempt = 0
        while True:
            attempt += 1
            result = self._attempt(target, notification)
            final = (
                result.ok
                or not result.retryable
                or attempt >= self.max_attempts
                or self._stop.is_set()
            )
            self._report(target, notification, attempt, result, final)
            if final:
                return
            self._sleep(self.backoff_delay(attempt, result.retry_after_s))
            if self._stop.is_set():
                reason = f"dispatcher closed after {attempt} attempt(s); not retried"
                self._report(target, notification, attempt, _failure(reason), True)
                return

    def _attempt(self, target: Notifier, notification: Notification) -> DeliveryResult:
        start = time.perf_counter()
        try:
            return target.deliver(notification)
        except Exception as exc:
            _log.exception("alert notifier %r raised", target)
            return _failure(f"{type(exc).__name__}: {exc}", time.perf_counter() - start)

    def _report(
        self,
        target: Notifier,
        notification: Notification,
        attempt: int,
        result: DeliveryResult,
        final: bool,
    ) -> None:
        try:
            self._on_result(target, notification, attempt, result, final)
        except Exception:
            _log.exception("alert on_result callback raised")
