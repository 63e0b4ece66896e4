"""The budget loop: a thread in ``modelyard server`` beside the monitor loop.

Every ``interval_s`` (``MODELYARD_BUDGET_INTERVAL_S``, 60 s by default), for every
project's budget, it

1. asks the ledger what the project spent this calendar month (UTC) so far;
2. evaluates the budget (:func:`~._budget.evaluate`: forecast and threshold crossings);
3. stores the new state, the history lines and one outbox entry per notification and
   target in one transaction (:meth:`BudgetRepository.save_evaluation`);
4. hands every outbox entry still pending to the same
   :class:`~modelyard.notify.Dispatcher`, signed webhooks and actions as alert rules
   use, and records every attempt in the budget history and the audit log; an entry is
   marked delivered or failed when its delivery ends.

Because the decision and its notifications are stored together, and a notification's id
depends only on (project, month, amount, threshold, kind), a crash anywhere neither loses
a notification nor sends it under a new id: an entry still pending after a restart is
sent again with the same ``X-Modelyard-Delivery``, which receivers use to drop a
duplicate. A failure for one project is logged and recorded, never stops the loop.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from modelyard.core.clock import Clock, SystemClock
from modelyard.core.errors import InvalidInput, ModelyardError
from modelyard.cost.budget import BudgetState, Crossing, Month, evaluate, month_of
from modelyard.cost.budget_service import SpendFn
from modelyard.notify import (
    DeliveryResult,
    Dispatcher,
    Notification,
    Notifier,
    NotifierPool,
    NotifyingLoop,
    attempt_record,
    describe_attempt,
    notification_id,
)
from modelyard.store import MetadataStore
from modelyard.store.budget_repo import DELIVERED, FAILED, BudgetRecord, OutboxEntry

__all__ = [
    "SYSTEM_ACTOR",
    "BudgetLoop",
    "budget_notification",
    "notification_from_payload",
    "notification_payload",
]

logger = logging.getLogger("modelyard.cost")

SYSTEM_ACTOR = "system:budgets"


def _money(value: float | None, currency: str) -> str:
    return "n/a" if value is None else f"{value:,.2f} {currency}"


def budget_notification(record: BudgetRecord, crossing: Crossing, month: Month) -> Notification:
    """The notification of one crossing; its id is stable for (project, month, amount,
    threshold, kind)."""
    amount, currency = record.monthly_amount, record.currency
    line = amount * crossing.threshold / 100.0
    rule = f"budget {amount:g} {currency}/month: {crossing.threshold:g}% {crossing.kind}"
    if crossing.kind == "actual":
        summary = (
            f"[BUDGET] {record.project}: spent {_money(crossing.spent, currency)} in "
            f"{month.key}, {crossing.threshold:g}% of the {_money(amount, currency)} "
            f"monthly budget (forecast {_money(crossing.forecast, currency)})"
        )
    else:
        summary = (
            f"[BUDGET FORECAST] {record.project}: on track to spend "
            f"{_money(crossing.forecast, currency)} in {month.key}, "
            f"{crossing.threshold:g}% of the {_money(amount, currency)} monthly budget "
            f"(spent {_money(crossing.spent, currency)} so far)"
        )
    details = {
        "budget": amount,
        "currency": currency,
        "month": month.key,
        "threshold": crossing.threshold,
        "threshold_amount": line,
        "kind": crossing.kind,
        "spent": crossing.spent,
        "forecast": crossing.forecast,
        "percent": 100.0 * crossing.spent / amount,
    }
    return Notification(
        id=notification_id(record.project, "", f"{rule} {month.key}", "firing", month.start_s),
        deployment="",
        project=record.project,
        rule=rule,
        state="firing",
        value=crossing.spent,
        threshold=crossing.threshold,
        at=crossing.at_s,
        summary=summary,
        event="budget",
        details=details,
    )


def notification_payload(n: Notification) -> dict[str, Any]:
    """What the outbox keeps to send ``n`` again, identically."""
    return {
        "id": n.id,
        "project": n.project,
        "rule": n.rule,
        "value": n.value,
        "threshold": n.threshold,
        "at": n.at,
        "summary": n.summary,
        "details": dict(n.details),
    }


def notification_from_payload(payload: dict[str, Any]) -> Notification:
    """The notification an outbox entry holds.

    Raises:
        InvalidInput: the payload is not one :func:`notification_payload` wrote.
    """
    try:
        return Notification(
            id=str(payload["id"]),
            deployment="",
            project=str(payload["project"]),
            rule=str(payload["rule"]),
            state="firing",
            value=None if payload.get("value") is None else float(payload["value"]),
            threshold=float(payload["threshold"]),
            at=float(payload["at"]),
            summary=str(payload["summary"]),
            event="budget",
            details=dict(payload["details"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"a queued budget notification is unreadable: {exc}") from None


class BudgetLoop(NotifyingLoop):
    """Evaluates every budget and notifies crossings; see the module docstring.

    Notifications not yet delivered when it stops stay queued for the next start.

    Args:
        store: the metadata store.
        spend: a project's spend over ``[start_ms, end_ms)`` (the cost ledger's
            ``CostService.project_spend``).
        clock: wall-clock time (the month and the forecast).
        interval_s: time between passes.
        dispatcher: delivers notifications; one with default retries when None.
    """

    name = "budget-loop"

    def __init__(
        self,
        store: MetadataStore,
        spend: SpendFn,
        *,
        clock: Clock | None = None,
        interval_s: float = 60.0,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self._store = store
        self._repo = store.budgets
        self._spend = spend
        self._clock: Clock = clock or SystemClock()
        super().__init__(interval_s, dispatcher, self.delivered)
        self._targets = NotifierPool()
        self._lock = threading.Lock()
        self._in_flight: dict[tuple[str, int], OutboxEntry] = {}
        self._finished: set[int] = set()
        self._errors: dict[str, str] = {}

    # ---- one pass -----------------------------------------------------------------

    def tick(self) -> None:
        """Evaluate every budget, then send what the outbox holds."""
        now = self._clock.now()
        for record in self._repo.budgets():
            if self._stop.is_set():
                return
            try:
                self.evaluate(record, now)
                self._errors.pop(record.project, None)
            except Exception as exc:
                self._failed(record.project, exc)
        self.send_pending()

    def evaluate(self, record: BudgetRecord, now: float) -> bool:
        """Evaluate one budget at ``now`` and store the outcome.

        Returns:
            False when the budget changed or went meanwhile (nothing was stored).
        """
        month = month_of(now)
        spent = float(self._spend(record.project, int(month.start_s * 1000), int(now * 1000)))
        state = BudgetState.from_json(record.state)
        ev = evaluate(record.monthly_amount, record.thresholds, spent, now, state)
        events: list[tuple[str, str, dict[str, Any]]] = []
        if ev.reset:
            why = "a new month" if state.month != month.key else "a new budget amount"
            events.append(("rearmed", f"{why} ({month.key}): every threshold can notify again", {}))
        targets = self._target_names(record)
        queued: list[tuple[str, str, dict[str, Any]]] = []
        for crossing in ev.crossings:
            n = budget_notification(record, crossing, month)
            data = {**crossing.to_json(), "delivery": n.id, "targets": targets}
            note = "" if targets else " (no webhook or action: not notified)"
            events.append(("crossed", n.summary + note, data))
            queued.extend((n.id, t, notification_payload(n)) for t in targets)
        last = {
            "month": month.key,
            "spent": ev.spent,
            "forecast": ev.forecast,
            "percent": ev.percent,
            "forecast_percent": ev.forecast_percent,
            "at_ms": int(now * 1000),
        }
        return self._repo.save_evaluation(
            record.id,
            expect_updated_at_ms=record.updated_at_ms,
            state=ev.state.to_json(),
            last=last,
            events=events,
            notifications=queued,
        )

    def _failed(self, project: str, exc: Exception) -> None:
        message = exc.message if isinstance(exc, ModelyardError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ModelyardError):
            logger.warning("budget of %s not evaluated: %s", project, message)
        else:
            logger.exception("budget of %s not evaluated", project)
        if self._errors.get(project) == message:
            return  # said once; not again every pass
        self._errors[project] = message
        try:
            self._repo.add_event(project, "error", f"budget not evaluated: {message}")
        except Exception:
            logger.exception("could not record a budget error")

    @staticmethod
    def _target_names(record: BudgetRecord) -> list[str]:
        names = []
        if record.webhook_url:
            names.append("webhook")
        if record.action:
            names.append(f"action:{record.action}")
        return names

    # ---- notifications ------------------------------------------------------------

    def send_pending(self) -> int:
        """Submit every pending outbox entry not already being delivered.

        Returns:
            How many were submitted.
        """
        budgets = {b.id: b for b in self._repo.budgets()}
        submitted = 0
        for entry in self._repo.pending_notifications():
            record = budgets.get(entry.budget_id)
            if record is None:
                continue
            try:
                notification = notification_from_payload(entry.payload)
                target = self._target(record, entry.target)
            except ModelyardError as exc:
                self._repo.finish_notification(entry.id, FAILED, entry.attempts)
                self._repo.add_event(
                    entry.project,
                    "notify_failed",
                    f"cannot notify {entry.target}: {exc.message}",
                    {"delivery": entry.notification_id, "target": entry.target},
                )
                continue
            key = (notification.id, id(target))
            with self._lock:
                # Read as pending, but its delivery may have ended since: not again.
                if key in self._in_flight or entry.id in self._finished:
                    continue
                self._in_flight[key] = entry
            self._dispatcher.submit(target, notification)
            submitted += 1
        return submitted

    def _target(self, record: BudgetRecord, name: str) -> Notifier:
        if name == "webhook":
            if not record.webhook_url:
                raise InvalidInput("the budget has no webhook any more")
            return self._targets.webhook(record.webhook_url, self._repo.webhook_secret(record.id))
        if name.startswith("action:"):
            action = name.removeprefix("action:")
            return self._targets.action(self._store.monitoring.action(record.project, action))
        raise InvalidInput(f"unknown notification target {name!r}")

    def delivered(
        self,
        target: Notifier,
        notification: Notification,
        attempt: int,
        result: DeliveryResult,
        final: bool,
    ) -> None:
        """Every attempt goes to the budget history and the audit log; the outbox entry
        is marked when its delivery ends (dropped or cut short by a stop: it stays
        pending, for the next pass or the next start)."""
        key = (notification.id, id(target))
        with self._lock:
            entry = self._in_flight.get(key)
        what = f"{notification.summary} -> {target.target}"
        message = describe_attempt(what, attempt, result, final)
        requeued = final and not result.ok and (attempt == 0 or self._stop.is_set())
        if requeued:
            message += "; it stays queued"
        try:
            self._repo.add_event(
                notification.project,
                "notify" if result.ok else "notify_failed",
                message,
                attempt_record(target, notification, attempt, result, final),
            )
            self._store.auth.append_audit(
                actor=SYSTEM_ACTOR,
                token_id=None,
                action="budget.notify",
                project=notification.project,
                target=f"budget:{notification.project} {target.target}",
                outcome="ok" if result.ok else "error",
                status_code=result.code or 0,
                detail=json.dumps(
                    {
                        "attempt": attempt,
                        "final": final,
                        "delivery": notification.id,
                        "error": result.error,
                    }
                ),
            )
            if final and entry is not None and not requeued:
                status = DELIVERED if result.ok else FAILED
                self._repo.finish_notification(entry.id, status, attempt)
        except Exception:
            logger.exception("could not record a budget notification attempt")
        finally:
            if final:
                with self._lock:
                    self._in_flight.pop(key, None)
                    if entry is not None and not requeued:
                        self._finished.add(entry.id)
