"""Notifications: the contract shared by alert rules and budgets, and its delivery.

- :class:`Notification` is what receivers get: one event (an alert rule's firing or
  resolved transition, a budget threshold crossed …) as JSON, with an ``id`` that stays
  the same over retries (and over re-evaluations of the same event), so receivers can
  drop duplicates.
- :class:`WebhookNotifier` POSTs it, signed with HMAC-SHA256 over ``"<timestamp>.<body>"``;
  receivers check the signature with :func:`verify_signature`.
- :class:`CommandAction` runs a registered command (no shell) with the notification on
  stdin and in ``MODELYARD_ALERT``: the closed loop, e.g. a retrain job.
- :class:`Dispatcher` delivers in the background, retrying with backoff, one ordered
  lane per target; :class:`NotifierPool` builds one notifier per target.
- :class:`NotifyingLoop` runs a periodic pass in a thread and owns its dispatcher (the
  monitor's and the budgets' loops).

This package imports only :mod:`modelyard.core`: :mod:`modelyard.monitor` and
:mod:`modelyard.cost` build notifications from their own events and hand them here.
"""

from __future__ import annotations

from modelyard.notify._dispatch import (
    Dispatcher,
    NotifierPool,
    OnResult,
    attempt_record,
    describe_attempt,
)
from modelyard.notify._loop import NotifyingLoop
from modelyard.notify._notification import (
    DeliveryResult,
    Notification,
    NotificationState,
    Notifier,
    notification_id,
    sign,
    verify_signature,
)
from modelyard.notify._notifiers import CommandAction, WebhookNotifier, check_webhook_url

__all__ = [
    "CommandAction",
    "DeliveryResult",
    "Dispatcher",
    "Notification",
    "NotificationState",
    "Notifier",
    "NotifierPool",
    "NotifyingLoop",
    "OnResult",
    "WebhookNotifier",
    "attempt_record",
    "check_webhook_url",
    "describe_attempt",
    "notification_id",
    "sign",
    "verify_signature",
]
