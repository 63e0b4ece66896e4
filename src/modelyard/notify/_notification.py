"""What a notification is: the payload receivers get, delivery results, signatures.

- :class:`Notification`: one firing or resolved transition of one deployment's rule (or
  another event, such as a budget threshold crossed, with its own ``event`` name and
  ``details``), as JSON, with an ``id`` that stays the same over retries.
- :func:`sign` / :func:`verify_signature`: HMAC-SHA256 over ``"<timestamp>.<body>"``.
- :class:`Notifier`: what delivers one (see :mod:`._notifiers`).

Nothing here knows about alert rules or budgets: :mod:`modelyard.monitor` and
:mod:`modelyard.cost` build their notifications from their own events.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, Protocol, TypeAlias

from modelyard.core.clock import utc_datetime
from modelyard.core.errors import InvalidInput

NotificationState: TypeAlias = Literal["firing", "resolved"]

#: What an event name may look like (``alert``, ``budget``).
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
#: Payload keys an event's ``details`` may not replace.
_RESERVED_KEYS: Final = frozenset(
    ("version", "event", "id", "project", "at", "at_iso", "summary", "labels")
)


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
    """One event for receivers: an alert rule's transition, or another event.

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
        event: what happened: ``alert`` (an alert rule's transition, the default) or
            another event name (``budget``); sent as ``X-Modelyard-Event``.
        details: the event's own fields; for any event but ``alert`` the payload is
            ``version``, ``event``, ``id``, ``project``, these fields, ``at``,
            ``at_iso``, ``summary`` and ``labels`` (an ``alert`` payload ignores them).
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
    event: str = "alert"
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            raise InvalidInput("notification: id must not be empty")
        if not isinstance(self.event, str) or not _EVENT_NAME.fullmatch(self.event):
            raise InvalidInput(f"notification: event {self.event!r} is not an event name")
        reserved = sorted(set(self.details) & _RESERVED_KEYS)
        if reserved:
            raise InvalidInput(f"notification: details may not set {reserved}")
        if self.state not in ("firing", "resolved"):
            raise InvalidInput(
                f"notification: state must be firing or resolved, not {self.state!r}"
            )
        if not math.isfinite(self.at):
            raise InvalidInput("notification: 'at' must be a finite time")
        labels = {str(k): str(v) for k, v in sorted(self.labels.items())}
        object.__setattr__(self, "labels", MappingProxyType(labels))
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    def to_json(self) -> dict[str, Any]:
        """The webhook payload (also a command action's stdin), version 1."""
        if self.event != "alert":
            return {
                "version": 1,
                "event": self.event,
                "id": self.id,
                "project": self.project,
                **self.details,
                "at": self.at,
                "at_iso": utc_datetime(self.at).isoformat(),
                "summary": self.summary,
                "labels": dict(self.labels),
            }
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


def _failure(reason: str, duration_s: float = 0.0) -> DeliveryResult:
    return DeliveryResult(ok=False, code=None, error=reason, duration_s=duration_s)
