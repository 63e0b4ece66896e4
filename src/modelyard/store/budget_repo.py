"""Persistence of budgets (settings, evaluation state, history, notification outbox) and
project quotas, with the usage a quota is checked against.

Every write is one transaction. An evaluation's new state, its history lines and the
notifications it causes are stored together (:meth:`BudgetRepository.save_evaluation`),
so a crash can neither lose a notification nor record one that was never decided.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from modelyard.core.deployments import ACTIVE_REPLICA_STATES
from modelyard.core.errors import NotFound
from modelyard.store._sql import SqlStore
from modelyard.store.schema import (
    BudgetEventRow,
    BudgetNotificationRow,
    BudgetRow,
    DeploymentReplicaRow,
    DeploymentRow,
    ProjectQuotaRow,
    ProjectRow,
)

__all__ = [
    "BudgetEvent",
    "BudgetRecord",
    "BudgetRepository",
    "OutboxEntry",
    "ProjectUsage",
    "QuotaRecord",
]

#: Outbox states: waiting for (another) delivery, delivered, given up.
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class BudgetRecord:
    """A project's monthly budget as stored (never the webhook secret)."""

    id: int
    project: str
    monthly_amount: float
    currency: str
    thresholds: tuple[float, ...]
    webhook_url: str
    action: str
    state: dict[str, Any]
    last: dict[str, Any]
    evaluated_at_ms: int | None
    created_by: str
    created_at_ms: int
    updated_at_ms: int


@dataclass(frozen=True)
class BudgetEvent:
    """One line of a project's budget history."""

    id: int
    project: str
    time_ms: int
    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboxEntry:
    """A budget notification to one target (``webhook`` or ``action:<name>``)."""

    id: int
    budget_id: int
    project: str
    notification_id: str
    target: str
    status: str
    attempts: int
    payload: dict[str, Any]
    created_at_ms: int


@dataclass(frozen=True)
class QuotaRecord:
    """A project's quota as stored; None: no limit on that resource."""

    project: str
    max_replicas: int | None
    max_cpu: float | None
    max_memory_gb: float | None
    max_gpu: float | None
    updated_by: str
    updated_at_ms: int


@dataclass(frozen=True)
class ProjectUsage:
    """What a project's active replicas (starting, ready, draining) request together."""

    replicas: int
    cpu: float
    memory_gb: float
    gpu: float


#: An event to record: (kind, message, data).
EventDraft = tuple[str, str, dict[str, Any]]
#: A notification to queue: (notification id, target, payload).
OutboxDraft = tuple[str, str, dict[str, Any]]


class BudgetRepository:
    def __init__(self, sql: SqlStore) -> None:
        self._sql = sql

    def _now_ms(self) -> int:
        return int(self._sql.clock.now() * 1000)

    # ---- budgets -------------------------------------------------------------------

    def set_budget(
        self,
        project: str,
        *,
        monthly_amount: float,
        currency: str,
        thresholds: Sequence[float],
        webhook_url: str,
        webhook_secret: str,
        action: str,
        by: str,
        event: EventDraft,
    ) -> BudgetRecord:
        """Create or replace a project's budget (its evaluation state is kept: a new
        amount resets it at the next evaluation), with a history line."""
        now = self._now_ms()
        with self._sql.transaction() as s:
            project_id = _project_id(s, project)
            row = s.scalar(select(BudgetRow).where(BudgetRow.project_id == project_id))
            if row is None:
                row = BudgetRow(
                    project_id=project_id,
                    state_json="{}",
                    last_json="{}",
                    evaluated_at_ms=None,
                    created_by=by,
                    created_at_ms=now,
                )
                s.add(row)
            row.monthly_amount = monthly_amount
            row.currency = currency
            row.thresholds_json = json.dumps(list(thresholds))
            row.webhook_url = webhook_url
            row.webhook_secret = webhook_secret
            row.action = action
            row.updated_at_ms = max(now, (row.updated_at_ms or 0) + 1)
            s.add(_event_row(project_id, now, *event))
            s.flush()
            return _budget(row, project)

    def find_budget(self, project: str) -> BudgetRecord | None:
        with self._sql.read() as s:
            project_id = _project_id(s, project)
            row = s.scalar(select(BudgetRow).where(BudgetRow.project_id == project_id))
            return _budget(row, project) if row is not None else None

    def budget(self, project: str) -> BudgetRecord:
        """Raises NotFound when the project has no budget."""
        found = self.find_budget(project)
        if found is None:
            raise NotFound(f"project {project!r} has no budget (modelyard budget set)")
        return found

    def budgets(self) -> list[BudgetRecord]:
        """Every project's budget, by project name."""
        with self._sql.read() as s:
            rows = s.execute(
                select(BudgetRow, ProjectRow.name)
                .join(ProjectRow, ProjectRow.id == BudgetRow.project_id)
                .order_by(ProjectRow.name)
            ).all()
            return [_budget(row, name) for row, name in rows]

    def webhook_secret(self, budget_id: int) -> str:
        with self._sql.read() as s:
            row = s.get(BudgetRow, budget_id)
            if row is None:
                raise NotFound(f"no budget {budget_id}")
            return row.webhook_secret

    def delete_budget(self, project: str, event: EventDraft) -> None:
        """Remove a project's budget (its history stays; queued notifications go).

        Raises:
            NotFound: the project has no budget.
        """
        with self._sql.transaction() as s:
            project_id = _project_id(s, project)
            row = s.scalar(select(BudgetRow).where(BudgetRow.project_id == project_id))
            if row is None:
                raise NotFound(f"project {project!r} has no budget")
            s.execute(
                delete(BudgetNotificationRow).where(BudgetNotificationRow.budget_id == row.id)
            )
            s.delete(row)
            s.add(_event_row(project_id, self._now_ms(), *event))

    def save_evaluation(
        self,
        budget_id: int,
        *,
        expect_updated_at_ms: int,
        state: dict[str, Any],
        last: dict[str, Any],
        events: Sequence[EventDraft],
        notifications: Sequence[OutboxDraft],
    ) -> bool:
        """Store an evaluation: its state, history lines and notifications, together.

        Returns:
            False (and writes nothing) when the budget was removed or changed since it
            was read: the next evaluation decides with the new settings.
        """
        now = self._now_ms()
        with self._sql.transaction() as s:
            row = s.get(BudgetRow, budget_id)
            if row is None or row.updated_at_ms != expect_updated_at_ms:
                return False
            row.state_json = json.dumps(state, sort_keys=True)
            row.last_json = json.dumps(last, sort_keys=True)
            row.evaluated_at_ms = now
            for kind, message, data in events:
                s.add(_event_row(row.project_id, now, kind, message, data))
            for notification_id, target, payload in notifications:
                s.add(
                    BudgetNotificationRow(
                        budget_id=budget_id,
                        notification_id=notification_id,
                        target=target,
                        status=PENDING,
                        attempts=0,
                        payload_json=json.dumps(payload, sort_keys=True),
                        created_at_ms=now,
                        updated_at_ms=now,
                    )
                )
            return True

    # ---- the notification outbox ---------------------------------------------------

    def pending_notifications(self) -> list[OutboxEntry]:
        """Notifications not yet delivered nor given up, oldest first."""
        with self._sql.read() as s:
            rows = s.execute(
                select(BudgetNotificationRow, ProjectRow.name)
                .join(BudgetRow, BudgetRow.id == BudgetNotificationRow.budget_id)
                .join(ProjectRow, ProjectRow.id == BudgetRow.project_id)
                .where(BudgetNotificationRow.status == PENDING)
                .order_by(BudgetNotificationRow.id)
            ).all()
            return [_outbox(row, name) for row, name in rows]

    def finish_notification(self, entry_id: int, status: str, attempts: int) -> None:
        """Record the end of a notification's delivery (``delivered`` or ``failed``)."""
        with self._sql.transaction() as s:
            row = s.get(BudgetNotificationRow, entry_id)
            if row is None:
                return  # its budget was removed meanwhile
            row.status = status
            row.attempts = attempts
            row.updated_at_ms = self._now_ms()

    # ---- history -------------------------------------------------------------------

    def add_event(
        self, project: str, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        with self._sql.transaction() as s:
            project_id = _project_id(s, project)
            s.add(_event_row(project_id, self._now_ms(), kind, message, data or {}))

    def history(
        self, project: str, *, after_id: int = 0, limit: int = 200, kind: str | None = None
    ) -> list[BudgetEvent]:
        """History lines after ``after_id``, oldest first."""
        with self._sql.read() as s:
            project_id = _project_id(s, project)
            q = select(BudgetEventRow).where(
                BudgetEventRow.project_id == project_id, BudgetEventRow.id > after_id
            )
            if kind is not None:
                q = q.where(BudgetEventRow.kind == kind)
            rows = s.scalars(q.order_by(BudgetEventRow.id).limit(limit)).all()
            return [
                BudgetEvent(
                    r.id, project, r.time_ms, r.kind, r.message, json.loads(r.data_json or "{}")
                )
                for r in rows
            ]

    def latest_events(
        self, project: str, *, before_id: int | None = None, limit: int = 100
    ) -> list[BudgetEvent]:
        """The newest ``limit`` history lines (before ``before_id`` if given), newest
        first: a page of the budget history, for the web UI."""
        with self._sql.read() as s:
            project_id = _project_id(s, project)
            q = select(BudgetEventRow).where(BudgetEventRow.project_id == project_id)
            if before_id is not None:
                q = q.where(BudgetEventRow.id < before_id)
            rows = s.scalars(q.order_by(BudgetEventRow.id.desc()).limit(limit)).all()
            return [
                BudgetEvent(
                    r.id, project, r.time_ms, r.kind, r.message, json.loads(r.data_json or "{}")
                )
                for r in rows
            ]

    # ---- quotas --------------------------------------------------------------------

    def set_quota(
        self,
        project: str,
        *,
        max_replicas: int | None,
        max_cpu: float | None,
        max_memory_gb: float | None,
        max_gpu: float | None,
        by: str,
    ) -> QuotaRecord:
        """Create or replace a project's quota."""
        now = self._now_ms()
        with self._sql.transaction() as s:
            project_id = _project_id(s, project)
            row = s.get(ProjectQuotaRow, project_id)
            if row is None:
                row = ProjectQuotaRow(project_id=project_id)
                s.add(row)
            row.max_replicas = max_replicas
            row.max_cpu = max_cpu
            row.max_memory_gb = max_memory_gb
            row.max_gpu = max_gpu
            row.updated_by = by
            row.updated_at_ms = now
            s.flush()
            return _quota(row, project)

    def quota(self, project: str) -> QuotaRecord | None:
        """The project's quota; None when it has none (or the project does not exist)."""
        with self._sql.read() as s:
            row = s.scalar(
                select(ProjectQuotaRow)
                .join(ProjectRow, ProjectRow.id == ProjectQuotaRow.project_id)
                .where(ProjectRow.name == project)
            )
            return _quota(row, project) if row is not None else None

    def delete_quota(self, project: str) -> None:
        """Raises NotFound when the project has no quota."""
        with self._sql.transaction() as s:
            project_id = _project_id(s, project)
            result = s.execute(
                delete(ProjectQuotaRow).where(ProjectQuotaRow.project_id == project_id)
            )
            if getattr(result, "rowcount", 0) == 0:
                raise NotFound(f"project {project!r} has no quota")

    def usage(self, project: str, *, exclude_deployment: int | None = None) -> ProjectUsage:
        """What the project's active replicas request (one deployment's left out if
        ``exclude_deployment`` is given)."""
        with self._sql.read() as s:
            q = (
                select(
                    func.count(DeploymentReplicaRow.id),
                    func.coalesce(func.sum(DeploymentReplicaRow.cpu), 0.0),
                    func.coalesce(func.sum(DeploymentReplicaRow.memory_mb), 0),
                    func.coalesce(func.sum(DeploymentReplicaRow.gpu), 0.0),
                )
                .join(DeploymentRow, DeploymentRow.id == DeploymentReplicaRow.deployment_id)
                .join(ProjectRow, ProjectRow.id == DeploymentRow.project_id)
                .where(
                    ProjectRow.name == project,
                    DeploymentReplicaRow.state.in_(ACTIVE_REPLICA_STATES),
                )
            )
            if exclude_deployment is not None:
                q = q.where(DeploymentReplicaRow.deployment_id != exclude_deployment)
            count, cpu, memory_mb, gpu = s.execute(q).one()
            return ProjectUsage(int(count), float(cpu), float(memory_mb) / 1024, float(gpu))


def _project_id(s: Session, project: str) -> str:
    project_id = s.scalar(select(ProjectRow.id).where(ProjectRow.name == project))
    if project_id is None:
        raise NotFound(f"project {project!r} does not exist")
    return project_id


def _event_row(
    project_id: str, now_ms: int, kind: str, message: str, data: dict[str, Any]
) -> BudgetEventRow:
    return BudgetEventRow(
        project_id=project_id,
        time_ms=now_ms,
        kind=kind,
        message=message,
        data_json=json.dumps(data, sort_keys=True, default=str),
    )


def _budget(r: BudgetRow, project: str) -> BudgetRecord:
    return BudgetRecord(
        id=r.id,
        project=project,
        monthly_amount=r.monthly_amount,
        currency=r.currency,
        thresholds=tuple(float(t) for t in json.loads(r.thresholds_json)),
        webhook_url=r.webhook_url,
        action=r.action,
        state=json.loads(r.state_json or "{}"),
        last=json.loads(r.last_json or "{}"),
        evaluated_at_ms=r.evaluated_at_ms,
        created_by=r.created_by,
        created_at_ms=r.created_at_ms,
        updated_at_ms=r.updated_at_ms,
    )


def _outbox(r: BudgetNotificationRow, project: str) -> OutboxEntry:
    return OutboxEntry(
        id=r.id,
        budget_id=r.budget_id,
        project=project,
        notification_id=r.notification_id,
        target=r.target,
        status=r.status,
        attempts=r.attempts,
        payload=json.loads(r.payload_json),
        created_at_ms=r.created_at_ms,
    )


def _quota(r: ProjectQuotaRow, project: str) -> QuotaRecord:
    return QuotaRecord(
        project=project,
        max_replicas=r.max_replicas,
        max_cpu=r.max_cpu,
        max_memory_gb=r.max_memory_gb,
        max_gpu=r.max_gpu,
        updated_by=r.updated_by,
        updated_at_ms=r.updated_at_ms,
    )
