"""Alert notifications: signed webhooks, command actions and a retrying dispatcher.

- :class:`Notification` is what receivers get: one firing or resolved transition of one
  deployment's rule, as JSON, with an ``id`` that stays the same over retries (and over
  re-evaluations of the same transition), so receivers can drop duplicates.
- :class:`WebhookNotifier` POSTs it, signed with HMAC-SHA256 over ``"<timestamp>.<body>"``;
  receivers check the signature with :func:`verify_signature`.
- :class:`CommandAction` runs a registered command (no shell) with the notification on
  stdin and in ``MODELYARD_ALERT``: the closed loop, e.g. a retrain job.
- :class:`Dispatcher` delivers in the background: ``submit`` never blocks, each target
  has its own FIFO lane (a target that hangs or is down delays only its own
  notifications, and a ``resolved`` never overtakes its ``firing``), failures are retried
  with exponential backoff and jitter, and every attempt is reported to a callback (the
  server writes them to the audit log and the alert history).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import random
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Final, Literal, Protocol, TypeAlias

import httpx

from modelyard.core.clock import Clock, SystemClock, utc_datetime
from modelyard.core.errors import InvalidInput
from modelyard.monitor._alerting import Transition
from modelyard.monitor._rules import format_number

__all__ = [
    "CommandAction",
    "DeliveryResult",
    "Dispatcher",
    "Notification",
    "NotificationState",
    "Notifier",
    "OnResult",
    "WebhookNotifier",
    "notification_id",
    "sign",
    "verify_signature",
]

_log = logging.getLogger(__name__)

NotificationState: TypeAlias = Literal["firing", "resolved"]

#: Bytes of a webhook's response body or a command's output kept in a result.
_OUTPUT_LIMIT: Final = 4096
#: The longest per-attempt timeout a notifier accepts.
_MAX_TIMEOUT_S: Final = 3600.0


def notification_id(
    project: str, deployment: str, rule: str, state: NotificationState, at_s: float
) -> str:
    """A stable id for one transition: the same inputs always give the same id.

    Re-sending the same transition (a retry, or the server re-evaluating after a crash)
    therefore carries the same ``X-Modelyard-Delivery``, and receivers can de-duplicate.
    """
    key = "\x00".join((project, deployment, rule, state, repr(float(at_s))))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert event for receivers.

    Attributes:
        id: unique per transition and stable over retries (see :func:`notification_id`).
        deployment: the deployment's name.
        project: the deployment's project.
        rule: the rule's normalised text (``p99_ms > 50 for 2m``).
        state: ``firing`` or ``resolved``.
        value: the metric's value at the transition (None: no data or not finite).
        threshold: the rule's threshold.
        at: when it happened, epoch seconds.
        summary: one human-readable line.
        labels: extra key/value pairs (severity, team …), sorted by key.
        since: when the condition started holding (firing) or the alert started firing
            (resolved), epoch seconds; None if unknown.
    """

    id: str
    deployment: str
    project: str
    rule: str
    state: NotificationState
    value: float | None
    threshold: float
    at: float
    summary: str
    labels: Mapping[str, str] = field(default_factory=dict)
    since: float | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise InvalidInput("notification: id must not be empty")
        if self.state not in ("firing", "resolved"):
            raise InvalidInput(
                f"notification: state must be firing or resolved, not {self.state!r}"
            )
        if not math.isfinite(self.at):
            raise InvalidInput("notification: 'at' must be a finite time")
        labels = {str(k): str(v) for k, v in sorted(self.labels.items())}
        object.__setattr__(self, "labels", MappingProxyType(labels))

    @classmethod
    def from_transition(
        cls,
        transition: Transition,
        *,
        project: str,
        deployment: str,
        labels: Mapping[str, str] | None = None,
    ) -> Notification:
        """The notification of a firing or resolved :class:`Transition`.

        Raises:
            InvalidInput: the transition is not one receivers hear of (pending, inactive).
        """
        state = transition.to_state
        if state not in ("firing", "resolved"):
            raise InvalidInput(f"a transition to {state!r} is not notified")
        value = _finite_or_none(transition.value)
        shown = "no data" if value is None else format_number(value)
        summary = (
            f"[{state.upper()}] {project}/{deployment}: {transition.rule} "
            f"(value {shown}, threshold {format_number(transition.threshold)})"
        )
        return cls(
            id=notification_id(project, deployment, transition.rule, state, transition.at_s),
            deployment=deployment,
            project=project,
            rule=transition.rule,
            state=state,
            value=value,
            threshold=transition.threshold,
            at=transition.at_s,
            summary=summary,
            labels=dict(labels or {}),
            since=transition.since_s,
        )

    def to_json(self) -> dict[str, Any]:
        """The webhook payload (also a command action's stdin), version 1."""
        return {
            "version": 1,
            "event": "alert",
            "id": self.id,
            "project": self.project,
            "deployment": self.deployment,
            "rule": self.rule,
            "state": self.state,
            "value": _finite_or_none(self.value),
            "threshold": self.threshold,
            "at": self.at,
            "at_iso": utc_datetime(self.at).isoformat(),
            "since": self.since,
            "summary": self.summary,
            "labels": dict(self.labels),
        }

    def body(self) -> bytes:
        """The exact bytes sent: compact UTF-8 JSON of :meth:`to_json`."""
        return json.dumps(
            self.to_json(), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The outcome of one delivery attempt.

    Attributes:
        ok: delivered (a 2xx answer, or exit code 0).
        code: the HTTP status or the command's exit code (negative: killed by that
            signal); None if there was none (connection refused, timeout, not started).
        error: what went wrong, None when ok.
        duration_s: how long the attempt took.
        retryable: whether another attempt may succeed (5xx, 408, 429, connection
            errors and timeouts for webhooks).
        output: the tail of the response body or of the command's output.
        retry_after_s: the receiver's ``Retry-After``, if it sent one.
    """

    ok: bool
    code: int | None
    error: str | None
    duration_s: float
    retryable: bool = False
    output: str = ""
    retry_after_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict for the audit log."""
        return {
            "ok": self.ok,
            "code": self.code,
            "error": self.error,
            "duration_s": self.duration_s,
            "retryable": self.retryable,
            "output": self.output,
            "retry_after_s": self.retry_after_s,
        }


class Notifier(Protocol):
    """Something that can deliver a notification: a webhook or a command action.

    ``deliver`` must not raise for delivery failures (it returns a failed result), must
    bound its own duration, and may be called from any thread.
    """

    @property
    def target(self) -> str:
        """A description for logs and the audit log, without secrets."""
        ...

    def deliver(self, notification: Notification) -> DeliveryResult:
        """Make one attempt."""
        ...


# --- webhooks ------------------------------------------------------------------------


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def sign(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The ``X-Modelyard-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of
    ``"<timestamp>.<body>"`` under ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(_secret_bytes(secret), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str | bytes,
    timestamp: int | str,
    body: bytes,
    header: str,
    now_s: float,
    tolerance_s: float = 300.0,
) -> bool:
    """Whether a webhook request really comes from modelyard and is fresh.

    Args:
        secret: the secret shared when the webhook was registered.
        timestamp: the ``X-Modelyard-Timestamp`` header (unix seconds).
        body: the raw request body, exactly as received.
        header: the ``X-Modelyard-Signature`` header.
        now_s: the receiver's current time, unix seconds.
        tolerance_s: how far the timestamp may be from ``now_s`` (replay protection).

    Returns:
        True only if the timestamp is within ``tolerance_s`` of ``now_s`` and the
        signature matches (compared in constant time).
    """
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        return False
    if not math.isfinite(now_s) or abs(now_s - ts) > tolerance_s:
        return False
    expected = sign(secret, ts, body)
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def _check_timeout(what: str, timeout_s: float) -> float:
    if not (math.isfinite(timeout_s) and 0 < timeout_s <= _MAX_TIMEOUT_S):
        raise InvalidInput(
            f"{what} timeout must be between 0 and {_MAX_TIMEOUT_S:g} s, got {timeout_s!r}"
        )
    return float(timeout_s)


def _check_url(url: str) -> httpx.URL:
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        raise InvalidInput(f"webhook URL {url!r} is not a valid URL")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidInput(f"webhook URL '{url}' is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise InvalidInput(
            f"webhook URL '{url}': only http and https URLs are allowed"
            f" (got scheme '{parsed.scheme}')"
        )
    if not parsed.host:
        raise InvalidInput(f"webhook URL '{url}' has no host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise InvalidInput(f"webhook URL '{url}' has an invalid port {parsed.port}")
    return parsed


def _redact(url: httpx.URL) -> str:
    """The URL without user info, query or fragment (they may hold tokens)."""
    port = f":{url.port}" if url.port is not None else ""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}{port}{url.path}"


def _retry_after(value: str | None, now_s: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_s)


class WebhookNotifier:
    """POSTs notifications as signed JSON to an ``http``/``https`` URL.

    Each attempt sends ``Content-Type: application/json``, ``X-Modelyard-Event: alert``,
    ``X-Modelyard-Delivery: <notification id>``, ``X-Modelyard-Timestamp: <unix s>`` and
    ``X-Modelyard-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``.
    Redirects are not followed. Connecting, sending and each wait for the answer are
    bounded by ``timeout_s``, and at most ``timeout_s`` more is spent reading the
    answer's body (of which 4 KiB are kept).

    A 2xx answer is success; 5xx, 408, 429, connection errors and timeouts are
    retryable failures; other answers are final failures.
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        timeout_s: float = 5.0,
        *,
        clock: Clock | None = None,
        trust_env: bool = True,
    ) -> None:
        """
        Args:
            url: where to POST; only ``http`` and ``https``.
            secret: the HMAC key shared with the receiver; not empty.
            timeout_s: bound on connecting, sending and each wait for the answer.
            clock: where the timestamp comes from (the system clock by default).
            trust_env: whether proxy settings from the environment apply.

        Raises:
            InvalidInput: a bad URL (named in the message), an empty secret, or a
                timeout that is not a positive number of seconds.
        """
        self._url = _check_url(url)
        self.url = str(url)
        self._secret = _secret_bytes(secret)
        if not self._secret:
            raise InvalidInput("webhook secret must not be empty")
        self.timeout_s = _check_timeout("webhook", timeout_s)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._trust_env = trust_env

    @property
    def target(self) -> str:
        """``webhook <url>`` without credentials, query or fragment."""
        return f"webhook {_redact(self._url)}"

    def __repr__(self) -> str:
        return f"WebhookNotifier({_redact(self._url)!r}, timeout_s={self.timeout_s:g})"

    def headers(self, notification: Notification, timestamp: int, body: bytes) -> dict[str, str]:
        """The headers of one attempt."""
        return {
            "Content-Type": "application/json",
            "User-Agent": "modelyard-alerts/1",
            "X-Modelyard-Event": "alert",
            "X-Modelyard-Delivery": notification.id,
            "X-Modelyard-Timestamp": str(timestamp),
            "X-Modelyard-Signature": sign(self._secret, timestamp, body),
        }

    def deliver(self, notification: Notification) -> DeliveryResult:
        """Make one POST; never raises for network or HTTP failures."""
        body = notification.body()
        now_s = self._clock.now()
        timestamp = int(now_s)
        headers = self.headers(notification, timestamp, body)
        timeout = httpx.Timeout(self.timeout_s)
        start = time.perf_counter()
        try:
            with (
                httpx.Client(
                    timeout=timeout, follow_redirects=False, trust_env=self._trust_env
                ) as client,
                client.stream("POST", self._url, content=body, headers=headers) as response,
            ):
                output = self._read_some(response, start + 2 * self.timeout_s)
                status = response.status_code
                retry_after = _retry_after(response.headers.get("retry-after"), now_s)
        except httpx.TimeoutException as exc:
            return DeliveryResult(
                ok=False,
                code=None,
                error=f"timed out after {self.timeout_s:g} s ({type(exc).__name__})",
                duration_s=time.perf_counter() - start,
                retryable=True,
            )
        except httpx.TransportError as exc:
            return DeliveryResult(
                ok=False,
                code=None,
                error=f"{type(exc).__name__}: {exc}",
                duration_s=time.perf_counter() - start,
                retryable=True,
            )
        except httpx.HTTPError as exc:
            return DeliveryResult(
                ok=False,
                code=None,
                error=f"{type(exc).__name__}: {exc}",
                duration_s=time.perf_counter() - start,
            )
        duration = time.perf_counter() - start
        if 200 <= status < 300:
            return DeliveryResult(
                ok=True, code=status, error=None, duration_s=duration, output=output
            )
        retryable = status >= 500 or status in (408, 429)
        reason = "redirects are not followed" if 300 <= status < 400 else output[:200]
        return DeliveryResult(
            ok=False,
            code=status,
            error=f"HTTP {status}" + (f": {reason}" if reason else ""),
            duration_s=duration,
            retryable=retryable,
            output=output,
            retry_after_s=retry_after if retryable else None,
        )

    @staticmethod
    def _read_some(response: httpx.Response, deadline: float) -> str:
        kept = bytearray()
        for chunk in response.iter_raw():
            kept += chunk[: _OUTPUT_LIMIT - len(kept)]
            if len(kept) >= _OUTPUT_LIMIT or time.perf_counter() > deadline:
                break
        return kept.decode("utf-8", errors="replace")


# --- command actions ------------------------------------------------------------------


class CommandAction:
    """Runs a registered command when an alert fires or resolves: the closed loop.

    The command runs without a shell, with the notification's JSON on stdin and in the
    environment variable ``MODELYARD_ALERT`` (plus the server's environment and ``env``).
    Exit code 0 is success; a non-zero exit, or running past ``timeout_s`` (the command
    and everything in its process group is then killed), is a failure. The last 4 KiB of
    its combined stdout and stderr are kept in the result.

    Failures are not retried unless ``retry=True``: a command such as a retrain job is
    usually not safe to run twice.
    """

    def __init__(
        self,
        argv: Sequence[str],
        timeout_s: float = 300.0,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        retry: bool = False,
        check_exists: bool = True,
    ) -> None:
        """
        Raises:
            InvalidInput: an empty ``argv``, an argument that is not a string or holds a
                NUL, a bad timeout, or (with ``check_exists``) a program that is not an
                executable file or on ``PATH``.
        """
        if isinstance(argv, str | bytes) or not argv:
            raise InvalidInput("action command must be a non-empty list of arguments")
        for arg in argv:
            if not isinstance(arg, str) or "\x00" in arg:
                raise InvalidInput(f"action command argument {arg!r} must be a string without NUL")
        self.argv: tuple[str, ...] = tuple(argv)
        self.timeout_s = _check_timeout("action", timeout_s)
        self.env: Mapping[str, str] = MappingProxyType(dict(env or {}))
        self.cwd = None if cwd is None else Path(cwd)
        self.retry = retry
        if check_exists and shutil.which(self.argv[0]) is None:
            raise InvalidInput(
                f"action command '{self.argv[0]}' is not an executable file or on PATH"
            )

    @property
    def target(self) -> str:
        """``command <argv>``, shell-quoted."""
        return f"command {shlex.join(self.argv)}"

    def __repr__(self) -> str:
        return f"CommandAction({list(self.argv)!r}, timeout_s={self.timeout_s:g})"

    def deliver(self, notification: Notification) -> DeliveryResult:
        """Run the command once; never raises for a failing or missing command."""
        payload = notification.body()
        env = {**os.environ, **self.env, "MODELYARD_ALERT": payload.decode()}
        start = time.perf_counter()
        with tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                return DeliveryResult(
                    ok=False,
                    code=None,
                    error=f"cannot run '{self.argv[0]}': {exc.strerror or exc}",
                    duration_s=time.perf_counter() - start,
                )
            timed_out = False
            try:
                proc.communicate(payload, timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                proc.wait()
            duration = time.perf_counter() - start
            output = _tail(out)
        code = proc.returncode
        if timed_out:
            return DeliveryResult(
                ok=False,
                code=code,
                error=f"timed out after {self.timeout_s:g} s; killed",
                duration_s=duration,
                retryable=self.retry,
                output=output,
            )
        if code != 0:
            return DeliveryResult(
                ok=False,
                code=code,
                error=f"exit code {code}",
                duration_s=duration,
                retryable=self.retry,
                output=output,
            )
        return DeliveryResult(ok=True, code=0, error=None, duration_s=duration, output=output)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    killpg = getattr(os, "killpg", None)
    try:
        if killpg is not None:
            killpg(proc.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        else:  # pragma: no cover - Windows
            proc.kill()
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _tail(out: IO[bytes]) -> str:
    size = out.seek(0, os.SEEK_END)
    out.seek(max(0, size - _OUTPUT_LIMIT))
    return out.read().decode("utf-8", errors="replace")


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


def _failure(reason: str, duration_s: float = 0.0) -> DeliveryResult:
    return DeliveryResult(ok=False, code=None, error=reason, duration_s=duration_s)
