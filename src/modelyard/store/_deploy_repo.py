"""Persistence of deployments: desired state, revisions, replicas and the event log.

Every change to a deployment's desired state goes through :meth:`DeploymentRepository.change`,
one transaction that also bumps ``generation`` and appends the events explaining it, so a
reader never sees traffic moved without the revision or the event that moved it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from modelyard.core.backends import BackendSpec
from modelyard.core.deployments import (
    ACTIVE_REPLICA_STATES,
    Deployment,
    DeploymentEvent,
    EventDraft,
    Replica,
    Revision,
    RevisionDraft,
    Rollout,
    RuntimeSettings,
    ScalingConfig,
)
from modelyard.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from modelyard.store._sql import SqlStore
from modelyard.store.schema import (
    DeploymentEventRow,
    DeploymentReplicaRow,
    DeploymentRevisionRow,
    DeploymentRow,
    ProjectRow,
)

_UNSET: Any = object()


@dataclass
class DeploymentChange:
    """What one call to :meth:`DeploymentRepository.change` changes; ``None`` leaves it be.

    Attributes:
        weights: the complete traffic split (revision → percent); revisions left out get 0.
        shadows: the complete shadow map (revision → percent); revisions left out get 0.
        revision_states: revision → (state, error).
        stable_revision / previous_stable / rollout: new values (``UNSET`` leaves them).
        config: new scaling config.
        status: new status.
        new_revision: a revision to add; its number is returned by ``change``.
        events: events to append.
        expect_generation: refuse with Conflict if the deployment changed since.
    """

    weights: Mapping[int, int] | None = None
    shadows: Mapping[int, float] | None = None
    revision_states: Mapping[int, tuple[str, str]] | None = None
    stable_revision: Any = _UNSET
    previous_stable: Any = _UNSET
    rollout: Any = _UNSET
    config: ScalingConfig | None = None
    status: str | None = None
    new_revision: RevisionDraft | None = None
    events: Sequence[EventDraft] = field(default_factory=tuple)
    expect_generation: int | None = None


UNSET = _UNSET


class DeploymentRepository:
    """Deployments and their replicas. Thread-safe; one method, one transaction."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def _now_ms(self) -> int:
        return int(self._store.clock.now() * 1000)

    # --- desired state --------------------------------------------------------------

    def create(
        self,
        project: str,
        name: str,
        config: ScalingConfig,
        revision: RevisionDraft,
        created_by: str,
        events: Sequence[EventDraft] = (),
        backend: BackendSpec | None = None,
    ) -> Deployment:
        """Create a deployment with its first revision (number 1), on ``backend``
        (local processes when None).

        Raises:
            NotFound: no such project.
            AlreadyExists: a live deployment has this name.
        """
        now = self._now_ms()
        with self._store.transaction(f"deployment {name!r} already exists") as s:
            project_id = _project_id(s, project)
            if _live_row(s, name) is not None:
                raise AlreadyExists(f"deployment {name!r} already exists")
            row = DeploymentRow(
                project_id=project_id,
                name=name,
                config_json=config.to_json(),
                backend_json=(backend or BackendSpec()).to_json(),
                status="active",
                stable_revision=1,
                previous_stable=None,
                rollout_json="",
                generation=1,
                created_by=created_by,
                created_at_ms=now,
                updated_at_ms=now,
            )
            s.add(row)
            s.flush()
            _add_revision(s, row.id, 1, revision, now)
            _add_events(s, row.id, events, now)
            s.flush()
            return _load(s, row, project)

    def get(self, name: str, project: str | None = None) -> Deployment:
        """The live deployment ``name`` (in ``project`` if given).

        Raises:
            NotFound: no live deployment of that name (in that project).
        """
        with self._store.read() as s:
            row = _live_row(s, name)
            project_name = _project_of(s, row) if row is not None else None
            if row is None or (project is not None and project_name != project):
                where = f" in project {project!r}" if project is not None else ""
                raise NotFound(f"no deployment named {name!r}{where}")
            return _load(s, row, cast(str, project_name))

    def list_all(
        self, project: str | None = None, *, include_deleting: bool = True
    ) -> list[Deployment]:
        """Live deployments by name (of one project if given)."""
        with self._store.read() as s:
            q = select(DeploymentRow, ProjectRow.name).join(
                ProjectRow, ProjectRow.id == DeploymentRow.project_id
            )
            q = q.where(DeploymentRow.status != "deleted")
            if not include_deleting:
                q = q.where(DeploymentRow.status == "active")
            if project is not None:
                q = q.where(ProjectRow.name == project)
            rows = s.execute(q.order_by(DeploymentRow.name)).all()
            return [_load(s, row, pname) for row, pname in rows]

    def generations(self) -> dict[int, int]:
        """``deployment id → generation`` of every live deployment (a cheap change check)."""
        with self._store.read() as s:
            rows = s.execute(
                select(DeploymentRow.id, DeploymentRow.generation).where(
                    DeploymentRow.status != "deleted"
                )
            ).all()
            return {int(i): int(g) for i, g in rows}

    def change(self, deployment_id: int, change: DeploymentChange) -> tuple[Deployment, int | None]:
        """Apply ``change`` atomically; returns the new state and the new revision's number.

        Raises:
            NotFound: the deployment is gone.
            Conflict: ``expect_generation`` no longer matches.
            InvalidInput: a weight or shadow names a revision that does not exist.
        """
        now = self._now_ms()
        with self._store.transaction() as s:
            row = s.get(DeploymentRow, deployment_id)
            if row is None or row.status == "deleted":
                raise NotFound(f"deployment {deployment_id} no longer exists")
            if change.expect_generation is not None and row.generation != change.expect_generation:
                raise Conflict(f"deployment {row.name!r} changed meanwhile; try again")
            revs = {
                r.number: r
                for r in s.scalars(
                    select(DeploymentRevisionRow).where(
                        DeploymentRevisionRow.deployment_id == deployment_id
                    )
                )
            }
            new_number = None
            if change.new_revision is not None:
                new_number = max(revs, default=0) + 1
                revs[new_number] = _add_revision(
                    s, deployment_id, new_number, change.new_revision, now
                )
            _apply_revision_changes(row.name, revs, change)
            if change.stable_revision is not UNSET:
                row.stable_revision = change.stable_revision
            if change.previous_stable is not UNSET:
                row.previous_stable = change.previous_stable
            if change.rollout is not UNSET:
                rollout = cast("Rollout | None", change.rollout)
                row.rollout_json = rollout.to_json() if rollout is not None else ""
            if change.config is not None:
                row.config_json = change.config.to_json()
            if change.status is not None:
                row.status = change.status
            row.generation += 1
            row.updated_at_ms = now
            _add_events(s, deployment_id, change.events, now)
            s.flush()
            return _load(s, row, _project_of(s, row)), new_number

    def add_events(self, deployment_id: int, events: Sequence[EventDraft]) -> None:
        """Append events that change no desired state (scaling decisions, replica news)."""
        if not events:
            return
        with self._store.transaction() as s:
            _add_events(s, deployment_id, events, self._now_ms())

    def events(
        self,
        deployment_id: int,
        *,
        after_id: int = 0,
        limit: int = 1000,
        kind: str | None = None,
        newest_first: bool = False,
    ) -> list[DeploymentEvent]:
        """Events after ``after_id``, oldest first (or the newest ``limit``, newest first)."""
        with self._store.read() as s:
            name = s.scalar(select(DeploymentRow.name).where(DeploymentRow.id == deployment_id))
            q = select(DeploymentEventRow).where(
                DeploymentEventRow.deployment_id == deployment_id,
                DeploymentEventRow.id > after_id,
            )
            if kind is not None:
                q = q.where(DeploymentEventRow.kind == kind)
            order = DeploymentEventRow.id.desc() if newest_first else DeploymentEventRow.id
            rows = s.scalars(q.order_by(order).limit(limit)).all()
            return [
                DeploymentEvent(
                    id=r.id,
                    deployment=name or "",
                    time_ms=r.time_ms,
                    kind=r.kind,
                    revision=r.revision,
                    message=r.message,
                    data=json.loads(r.data_json or "{}"),
                )
                for r in rows
            ]

    def purge(self, deployment_id: int) -> None:
        """Mark a deployment deleted once its replicas are gone (its history stays)."""
        with self._store.transaction() as s:
            s.execute(
                update(DeploymentRow)
                .where(DeploymentRow.id == deployment_id)
                .values(status="deleted", updated_at_ms=self._now_ms())
            )

    # --- replicas -------------------------------------------------------------------

    def add_replica(self, replica: Replica) -> None:
        with self._store.transaction(f"replica {replica.id} exists") as s:
            s.add(
                DeploymentReplicaRow(
                    id=replica.id,
                    deployment_id=replica.deployment_id,
                    revision=replica.revision,
                    pid=replica.pid,
                    port=replica.port,
                    state=replica.state,
                    mode=replica.mode,
                    standby=replica.standby,
                    cpu=replica.cpu,
                    memory_mb=replica.memory_mb,
                    gpu=replica.gpu,
                    started_at_ms=replica.started_at_ms,
                    ready_at_ms=replica.ready_at_ms,
                    stopped_at_ms=replica.stopped_at_ms,
                    exit_reason=replica.exit_reason,
                )
            )

    def update_replica(self, replica_id: str, **values: Any) -> None:
        """Set columns of one replica (``state``, ``ready_at_ms``, ``stopped_at_ms``, …)."""
        allowed = {"state", "ready_at_ms", "stopped_at_ms", "exit_reason", "standby", "pid"}
        unknown = set(values) - allowed
        if unknown:
            raise InvalidInput(f"cannot update replica field(s) {sorted(unknown)}")
        with self._store.transaction() as s:
            s.execute(
                update(DeploymentReplicaRow)
                .where(DeploymentReplicaRow.id == replica_id)
                .values(**values)
            )

    def replicas(
        self, deployment_id: int | None = None, *, active_only: bool = True
    ) -> list[Replica]:
        """Replicas (of one deployment if given), oldest first."""
        with self._store.read() as s:
            q = select(DeploymentReplicaRow)
            if deployment_id is not None:
                q = q.where(DeploymentReplicaRow.deployment_id == deployment_id)
            if active_only:
                q = q.where(DeploymentReplicaRow.state.in_(ACTIVE_REPLICA_STATES))
            rows = s.scalars(
                q.order_by(DeploymentReplicaRow.started_at_ms, DeploymentReplicaRow.id)
            ).all()
            return [_replica(r) for r in rows]

    def count_active_replicas(self) -> int:
        with self._store.read() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(DeploymentReplicaRow)
                    .where(DeploymentReplicaRow.state.in_(ACTIVE_REPLICA_STATES))
                )
                or 0
            )


def _project_id(s: Session, project: str) -> str:
    pid = s.scalar(select(ProjectRow.id).where(ProjectRow.name == project))
    if pid is None:
        raise NotFound(f"no project named {project!r}")
    return pid


def _project_of(s: Session, row: DeploymentRow) -> str:
    return cast(str, s.scalar(select(ProjectRow.name).where(ProjectRow.id == row.project_id)))


def _live_row(s: Session, name: str) -> DeploymentRow | None:
    return s.scalars(
        select(DeploymentRow).where(DeploymentRow.name == name, DeploymentRow.status != "deleted")
    ).first()


def _add_revision(
    s: Session, deployment_id: int, number: int, draft: RevisionDraft, now_ms: int
) -> DeploymentRevisionRow:
    row = DeploymentRevisionRow(
        deployment_id=deployment_id,
        number=number,
        model_name=draft.model_name,
        model_version=draft.model_version,
        model_ref=draft.model_ref,
        settings_json=draft.settings.to_json(),
        state="pending",
        error="",
        weight=draft.weight,
        shadow_percent=draft.shadow_percent,
        created_at_ms=now_ms,
    )
    s.add(row)
    return row


def _apply_revision_changes(
    name: str, revs: dict[int, DeploymentRevisionRow], change: DeploymentChange
) -> None:
    for mapping, label in ((change.weights, "weight"), (change.shadows, "shadow")):
        if mapping is None:
            continue
        missing = sorted(set(mapping) - set(revs))
        if missing:
            raise InvalidInput(f"deployment {name!r} has no revision {missing[0]} ({label})")
    if change.weights is not None:
        for number, rev in revs.items():
            rev.weight = int(change.weights.get(number, 0))
    if change.shadows is not None:
        for number, rev in revs.items():
            rev.shadow_percent = float(change.shadows.get(number, 0.0))
    for number, (state, error) in (change.revision_states or {}).items():
        if number in revs:
            revs[number].state = state
            revs[number].error = error


def _add_events(s: Session, deployment_id: int, events: Sequence[EventDraft], now_ms: int) -> None:
    for e in events:
        s.add(
            DeploymentEventRow(
                deployment_id=deployment_id,
                time_ms=now_ms,
                kind=e.kind,
                revision=e.revision,
                message=e.message,
                data_json=json.dumps(e.data, sort_keys=True, default=str),
            )
        )


def _load(s: Session, row: DeploymentRow, project: str) -> Deployment:
    revs = s.scalars(
        select(DeploymentRevisionRow)
        .where(DeploymentRevisionRow.deployment_id == row.id)
        .order_by(DeploymentRevisionRow.number)
    ).all()
    rollout = Rollout.from_dict(json.loads(row.rollout_json)) if row.rollout_json else None
    return Deployment(
        id=row.id,
        project=project,
        name=row.name,
        config=ScalingConfig.from_dict(json.loads(row.config_json)),
        backend=BackendSpec.from_dict(json.loads(row.backend_json)),
        status=cast(Any, row.status),
        stable_revision=row.stable_revision,
        previous_stable=row.previous_stable,
        rollout=rollout,
        revisions=tuple(
            Revision(
                number=r.number,
                model_name=r.model_name,
                model_version=r.model_version,
                model_ref=r.model_ref,
                settings=RuntimeSettings.from_dict(json.loads(r.settings_json)),
                state=cast(Any, r.state),
                error=r.error,
                weight=r.weight,
                shadow_percent=r.shadow_percent,
                created_at_ms=r.created_at_ms,
            )
            for r in revs
        ),
        generation=row.generation,
        created_by=row.created_by,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
    )


def _replica(r: DeploymentReplicaRow) -> Replica:
    return Replica(
        id=r.id,
        deployment_id=r.deployment_id,
        revision=r.revision,
        pid=r.pid,
        port=r.port,
        state=cast(Any, r.state),
        mode=r.mode,
        standby=r.standby,
        cpu=r.cpu,
        memory_mb=r.memory_mb,
        started_at_ms=r.started_at_ms,
        ready_at_ms=r.ready_at_ms,
        stopped_at_ms=r.stopped_at_ms,
        exit_reason=r.exit_reason,
        gpu=r.gpu,
    )
