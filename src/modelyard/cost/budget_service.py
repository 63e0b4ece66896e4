"""Budgets and quotas as the API, SDK and CLI see them (permission-checked).

Setting or removing a budget or a quota takes a project admin; reading them a viewer.
Invalid input is refused, naming the field, before anything is written.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from modelyard.auth import Principal
from modelyard.core.clock import Clock
from modelyard.core.entities import Role
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.cost.budget import (
    BudgetState,
    Evaluation,
    check_amount,
    check_thresholds,
    evaluate,
    month_of,
    threshold_amount,
)
from modelyard.cost.quota import Quota, Usage, usage_of
from modelyard.notify import WebhookNotifier, check_webhook_url
from modelyard.store import MetadataStore
from modelyard.store.budget_repo import BudgetEvent, BudgetRecord, QuotaRecord

__all__ = [
    "DEFAULT_THRESHOLDS",
    "BudgetService",
    "BudgetSet",
    "BudgetStatus",
    "QuotaView",
    "SpendFn",
    "quota_text",
]

#: ``spend(project, start_ms, end_ms)``: what the project cost in ``[start_ms, end_ms)``,
#: in the price catalog's currency (the ledger's ``CostService.project_spend``).
SpendFn: TypeAlias = Callable[[str, int, int], float]

DEFAULT_THRESHOLDS: tuple[float, ...] = (50.0, 80.0, 100.0)


@dataclass(frozen=True)
class BudgetSet:
    """A budget just set, with its webhook's signing secret (shown only now)."""

    budget: BudgetRecord
    webhook_secret: str | None


@dataclass(frozen=True)
class BudgetStatus:
    """A budget and where the month stands, as ``budget show`` prints it.

    Attributes:
        budget: the stored budget.
        evaluation: the budget evaluated now (nothing is stored or sent by it).
        crossed: the crossings already notified this month (``evaluation.state``
            also holds those the next evaluation will notify).
        next_evaluation_ms: when the server evaluates it next (None: it never has).
    """

    budget: BudgetRecord
    evaluation: Evaluation
    crossed: BudgetState
    next_evaluation_ms: int | None

    def to_json(self) -> dict[str, Any]:
        b, e = self.budget, self.evaluation
        thresholds = []
        for level in b.thresholds:
            fired = {c.kind: c for c in self.crossed.crossed if c.threshold == level}
            thresholds.append(
                {
                    "percent": level,
                    "amount": threshold_amount(b.monthly_amount, level),
                    "actual_at_ms": _ms(fired.get("actual")),
                    "forecast_at_ms": _ms(fired.get("forecast")),
                }
            )
        return {
            **budget_json(b),
            "month": e.month.key,
            "month_start_ms": int(e.month.start_s * 1000),
            "month_end_ms": int(e.month.end_s * 1000),
            "spent": e.spent,
            "forecast": e.forecast,
            "percent": e.percent,
            "forecast_percent": e.forecast_percent,
            "thresholds": thresholds,
            "next_evaluation_ms": self.next_evaluation_ms,
        }


def _ms(crossing: Any) -> int | None:
    return None if crossing is None else int(crossing.at_s * 1000)


def budget_json(b: BudgetRecord) -> dict[str, Any]:
    """A stored budget as the API returns it (never the webhook secret)."""
    return {
        "project": b.project,
        "monthly": b.monthly_amount,
        "currency": b.currency,
        "alert_at": list(b.thresholds),
        "webhook": b.webhook_url,
        "action": b.action,
        "created_by": b.created_by,
        "created_at_ms": b.created_at_ms,
        "updated_at_ms": b.updated_at_ms,
        "evaluated_at_ms": b.evaluated_at_ms,
        "last": b.last,
    }


@dataclass(frozen=True)
class QuotaView:
    """A project's quota and what its active replicas request now."""

    quota: QuotaRecord
    usage: Usage


class BudgetService:
    """Budgets and quotas of projects.

    Args:
        store: the metadata store.
        clock: wall-clock time (the month and its forecast).
        spend: a project's spend over a period (the cost ledger).
        currency: the price catalog's currency; budgets are kept in it.
        interval_s: how often the server evaluates budgets (for ``next evaluation``).
    """

    def __init__(
        self,
        store: MetadataStore,
        clock: Clock,
        *,
        spend: SpendFn,
        currency: str,
        interval_s: float = 60.0,
    ) -> None:
        self._store = store
        self._repo = store.budgets
        self._clock = clock
        self._spend = spend
        self.currency = currency.upper()
        self.interval_s = interval_s

    # ---- budgets ------------------------------------------------------------------

    def set_budget(
        self,
        caller: Principal,
        project: str,
        *,
        monthly: float,
        currency: str | None = None,
        alert_at: Sequence[float] = DEFAULT_THRESHOLDS,
        webhook: str = "",
        action: str = "",
    ) -> BudgetSet:
        """Create or replace a project's monthly budget.

        A webhook gets a new signing secret each time the budget is set (returned once).

        Raises:
            InvalidInput: an amount that is not > 0, a currency other than the price
                catalog's, thresholds outside (0, 1000] % or not increasing, a bad
                webhook URL; each names the field.
            NotFound: the project or the named alert action does not exist.
        """
        caller.require(project, Role.ADMIN)
        self._store.auth.get_project(project)
        try:
            amount = check_amount(monthly)
        except InvalidInput as exc:
            raise InvalidInput(f"monthly: {exc.message}") from None
        code = self.currency if currency is None else str(currency).strip().upper()
        if code != self.currency:
            raise InvalidInput(
                f"currency: the budget is in {code} but the price catalog is in "
                f"{self.currency}; modelyard converts no currency, give the amount in "
                f"{self.currency} (modelyard budget set --monthly AMOUNT)"
            )
        thresholds = check_thresholds(list(alert_at))
        if webhook:
            try:
                check_webhook_url(webhook)
                WebhookNotifier(webhook, "check")  # the notifier's own URL rules
            except InvalidInput as exc:
                raise InvalidInput(f"webhook: {exc.message}") from None
        if action:
            self._store.monitoring.action(project, action)  # NotFound names it
        secret = "whsec_" + secrets.token_urlsafe(32) if webhook else ""
        text = f"{amount:g} {code}"
        record = self._repo.set_budget(
            project,
            monthly_amount=amount,
            currency=code,
            thresholds=thresholds,
            webhook_url=webhook,
            webhook_secret=secret,
            action=action,
            by=caller.user,
            event=(
                "set",
                f"budget set: {text} per month, alerts at "
                + ", ".join(f"{t:g}%" for t in thresholds),
                {
                    "by": caller.user,
                    "monthly": amount,
                    "currency": code,
                    "alert_at": list(thresholds),
                    "webhook": bool(webhook),
                    "action": action,
                },
            ),
        )
        return BudgetSet(record, secret or None)

    def show(self, caller: Principal, project: str) -> BudgetStatus:
        """The budget with the month's spend, forecast and crossings, computed now."""
        caller.require(project, Role.VIEWER)
        return self.status(self._repo.budget(project))

    def status(self, record: BudgetRecord) -> BudgetStatus:
        """:meth:`show` without the permission check."""
        now = self._clock.now()
        month = month_of(now)
        spent = self._spend(record.project, int(month.start_s * 1000), int(now * 1000))
        if not (math.isfinite(spent) and spent >= 0):
            raise InvalidInput(f"the ledger gave a spend of {spent!r} for {record.project!r}")
        stored = BudgetState.from_json(record.state)
        evaluation = evaluate(record.monthly_amount, record.thresholds, spent, now, stored)
        current = stored.month == month.key and stored.amount == record.monthly_amount
        next_ms = (
            None
            if record.evaluated_at_ms is None
            else record.evaluated_at_ms + int(self.interval_s * 1000)
        )
        return BudgetStatus(record, evaluation, stored if current else BudgetState(), next_ms)

    def budgets(self, caller: Principal) -> list[BudgetRecord]:
        """The budgets of every project the caller can see (as last evaluated)."""
        return [b for b in self._repo.budgets() if caller.role_in(b.project) is not None]

    def remove(self, caller: Principal, project: str) -> None:
        """Remove a project's budget; its history stays."""
        caller.require(project, Role.ADMIN)
        self._repo.delete_budget(project, ("removed", "budget removed", {"by": caller.user}))

    def history(
        self,
        caller: Principal,
        project: str,
        *,
        after_id: int = 0,
        limit: int = 200,
        kind: str | None = None,
    ) -> list[BudgetEvent]:
        """Settings changes, crossings and delivery attempts, oldest first."""
        caller.require(project, Role.VIEWER)
        if not 1 <= limit <= 5000:
            raise InvalidInput(f"limit must be between 1 and 5000, got {limit}")
        if after_id < 0:
            raise InvalidInput(f"after_id must be >= 0, got {after_id}")
        return self._repo.history(project, after_id=after_id, limit=limit, kind=kind)

    def latest_events(
        self, caller: Principal, project: str, *, before_id: int | None = None, limit: int = 100
    ) -> list[BudgetEvent]:
        """A page of the history, newest first: the ``limit`` lines before ``before_id``."""
        caller.require(project, Role.VIEWER)
        if not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be between 1 and 1000, got {limit}")
        return self._repo.latest_events(project, before_id=before_id, limit=limit)

    # ---- quotas -------------------------------------------------------------------

    def set_quota(
        self,
        caller: Principal,
        project: str,
        *,
        max_replicas: int | None = None,
        max_cpu: float | None = None,
        max_memory_gb: float | None = None,
        max_gpu: float | None = None,
    ) -> QuotaView:
        """Create or replace a project's quota (limits left out are unlimited).

        Lowering a quota below what runs stops nothing: it only holds back scale-ups.

        Raises:
            InvalidInput: no limit given, or one out of range (named).
        """
        caller.require(project, Role.ADMIN)
        self._store.auth.get_project(project)
        quota = Quota(max_replicas, max_cpu, max_memory_gb, max_gpu)
        if quota.empty:
            raise InvalidInput(
                "give at least one limit: max_replicas, max_cpu, max_memory_gb or max_gpu "
                "(modelyard quota rm removes a quota)"
            )
        record = self._repo.set_quota(
            project,
            max_replicas=quota.max_replicas,
            max_cpu=quota.max_cpu,
            max_memory_gb=quota.max_memory_gb,
            max_gpu=quota.max_gpu,
            by=caller.user,
        )
        self._repo.add_event(
            project,
            "quota",
            "quota set: " + quota_text(quota),
            {"by": caller.user, **{k: v for k, v in vars(quota).items() if v is not None}},
        )
        return QuotaView(record, self.usage(project))

    def quota(self, caller: Principal, project: str) -> QuotaView:
        """The project's quota and its usage now.

        Raises:
            NotFound: the project has no quota.
        """
        caller.require(project, Role.VIEWER)
        self._store.auth.get_project(project)
        record = self._repo.quota(project)
        if record is None:
            raise NotFound(f"project {project!r} has no quota (modelyard quota set)")
        return QuotaView(record, self.usage(project))

    def remove_quota(self, caller: Principal, project: str) -> None:
        caller.require(project, Role.ADMIN)
        self._repo.delete_quota(project)
        self._repo.add_event(project, "quota", "quota removed", {"by": caller.user})

    def usage(self, project: str) -> Usage:
        return usage_of(self._repo.usage(project))


def quota_text(quota: Quota) -> str:
    """``max_replicas 8, max_cpu 16`` (the limits that are set)."""
    parts = [f"{k} {v:g}" for k, v in vars(quota).items() if v is not None]
    return ", ".join(parts) or "no limit"
