"""Persistence of pipeline schedules and their fires (``modelyard pipeline schedule``).

Every write is one transaction. Starting a fire is a claim: the fire row and the
schedule's ``last_fire_at`` are written together, and only if no other fire of the
schedule is pending or running and the schedule is as it was read, so a fire is never
started twice, even by two schedulers on one PostgreSQL store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from modelyard.core.errors import Conflict, NotFound
from modelyard.core.ids import new_id
from modelyard.core.schedules import (
    ACTIVE_FIRE_STATES,
    PENDING,
    PIPELINE_SCHEDULE_TAG,
    RUNNING,
    FireRecord,
    ScheduleRecord,
)
from modelyard.store._sql import SqlStore
from modelyard.store.schema import (
    ExperimentRow,
    PipelineScheduleFireRow,
    PipelineScheduleRow,
    ProjectRow,
    RunRow,
    RunTagRow,
)

__all__ = ["ScheduleRepository"]


class ScheduleRepository:
    def __init__(self, sql: SqlStore) -> None:
        self._sql = sql

    def create(
        self,
        project: str,
        name: str,
        *,
        target: str,
        cron: str,
        executor: str,
        enabled: bool,
        created_by: str,
        now: float,
        next_fire_at: float | None,
    ) -> ScheduleRecord:
        """Store a new schedule, armed at ``now``.

        Raises:
            NotFound: no such project.
            AlreadyExists: the project has a schedule of that name.
        """
        conflict = f"name: project {project!r} already has a schedule named {name!r}"
        with self._sql.transaction(conflict) as s:
            row = PipelineScheduleRow(
                id=new_id(),
                project_id=_project_id(s, project),
                name=name,
                target=target,
                cron=cron,
                executor=executor,
                enabled=enabled,
                created_by=created_by,
                created_at=now,
                armed_at=now,
                last_fire_at=None,
                next_fire_at=next_fire_at,
            )
            s.add(row)
            s.flush()
            return _schedule(row, project, None)

    def get(self, project: str, name: str) -> ScheduleRecord:
        """Raises NotFound naming the schedule."""
        with self._sql.read() as s:
            return _records(s, PipelineScheduleRow.id == _schedule_row(s, project, name).id)[0]

    def by_id(self, schedule_id: str) -> ScheduleRecord | None:
        with self._sql.read() as s:
            found = _records(s, PipelineScheduleRow.id == schedule_id)
            return found[0] if found else None

    def list_schedules(self, project: str | None = None) -> list[ScheduleRecord]:
        """The schedules of ``project`` (every project's when None), by project and name."""
        with self._sql.read() as s:
            if project is None:
                return _records(s)
            return _records(s, PipelineScheduleRow.project_id == _project_id(s, project))

    def update(
        self,
        project: str,
        name: str,
        *,
        enabled: bool | None = None,
        cron: str | None = None,
        armed_at: float | None = None,
        next_fire_at: float | None = None,
    ) -> ScheduleRecord:
        """Change ``enabled`` and/or ``cron``; ``armed_at`` (when given) re-arms it, and
        ``next_fire_at`` is stored as given.

        Raises:
            NotFound: no such schedule.
        """
        with self._sql.transaction() as s:
            row = _schedule_row(s, project, name)
            if enabled is not None:
                row.enabled = enabled
            if cron is not None:
                row.cron = cron
            if armed_at is not None:
                row.armed_at = armed_at
            row.next_fire_at = next_fire_at
            s.flush()
            return _records(s, PipelineScheduleRow.id == row.id)[0]

    def set_next_fire(self, schedule_id: str, next_fire_at: float | None) -> None:
        with self._sql.transaction() as s:
            s.execute(
                update(PipelineScheduleRow)
                .where(PipelineScheduleRow.id == schedule_id)
                .values(next_fire_at=next_fire_at)
            )

    def delete(self, project: str, name: str) -> None:
        """Remove a schedule and its fire history (a running fire runs on to its end).

        Raises:
            NotFound: no such schedule.
        """
        with self._sql.transaction() as s:
            s.delete(_schedule_row(s, project, name))

    # ---- fires ----------------------------------------------------------------------

    def request_fire(self, project: str, name: str, *, by: str, now: float) -> FireRecord:
        """Queue a fire-now (PENDING) for the scheduler's next pass.

        Raises:
            NotFound: no such schedule.
            Conflict: a fire of it is pending or running (overlap policy ``forbid``).
        """
        with self._sql.transaction() as s:
            row = _schedule_row(s, project, name, lock=True)
            active = _active_fire(s, row.id)
            if active is not None:
                raise Conflict(
                    f"schedule {name!r} in project {project!r} is already "
                    f"{active.state.lower()} (fire {active.id}); one fire at a time"
                )
            fire = _new_fire(row.id, "manual", by, now, PENDING)
            s.add(fire)
            s.flush()
            return _fire(fire, project, name)

    def claim_cron_fire(
        self,
        schedule_id: str,
        *,
        expect_last_fire_at: float | None,
        expect_armed_at: float,
        tick_at: float,
        missed: int,
        now: float,
        next_fire_at: float | None,
    ) -> FireRecord | None:
        """Start a cron fire (RUNNING, ``last_fire_at`` = ``now``) if the schedule is still
        enabled, unchanged since it was planned, and has no active fire; else None."""
        with self._sql.transaction() as s:
            row = s.get(PipelineScheduleRow, schedule_id, with_for_update=True)
            if (
                row is None
                or not row.enabled
                or row.last_fire_at != expect_last_fire_at
                or row.armed_at != expect_armed_at
                or _active_fire(s, schedule_id) is not None
            ):
                return None
            fire = _new_fire(schedule_id, "cron", "scheduler", now, RUNNING, tick_at, missed)
            fire.started_at = now
            s.add(fire)
            row.last_fire_at = now
            row.next_fire_at = next_fire_at
            s.flush()
            return _fire(fire, *_names(s, row))

    def start_pending(self, fire_id: int, *, now: float) -> FireRecord | None:
        """Mark a PENDING fire RUNNING (and the schedule's ``last_fire_at``); None when it
        is no longer pending (its schedule was removed)."""
        with self._sql.transaction() as s:
            fire = s.get(PipelineScheduleFireRow, fire_id, with_for_update=True)
            if fire is None or fire.state != PENDING:
                return None
            row = s.get(PipelineScheduleRow, fire.schedule_id)
            if row is None:
                return None
            fire.state = RUNNING
            fire.started_at = now
            row.last_fire_at = now
            s.flush()
            return _fire(fire, *_names(s, row))

    def set_process(self, fire_id: int, *, pid: int | None, token_id: str | None) -> None:
        with self._sql.transaction() as s:
            s.execute(
                update(PipelineScheduleFireRow)
                .where(PipelineScheduleFireRow.id == fire_id)
                .values(pid=pid, token_id=token_id)
            )

    def set_run(self, fire_id: int, run_id: str) -> None:
        with self._sql.transaction() as s:
            s.execute(
                update(PipelineScheduleFireRow)
                .where(PipelineScheduleFireRow.id == fire_id)
                .values(run_id=run_id)
            )

    def finish(
        self,
        fire_id: int,
        *,
        state: str,
        now: float,
        message: str,
        exit_code: int | None = None,
        run_id: str | None = None,
    ) -> None:
        """Record a fire's end (a no-op when its schedule was removed meanwhile)."""
        with self._sql.transaction() as s:
            fire = s.get(PipelineScheduleFireRow, fire_id)
            if fire is None:
                return
            fire.state, fire.ended_at, fire.exit_code = state, now, exit_code
            fire.message = message
            fire.run_id = run_id or fire.run_id

    def fires(self, project: str, name: str, *, limit: int = 50) -> list[FireRecord]:
        """A schedule's fires, newest first.

        Raises:
            NotFound: no such schedule.
        """
        with self._sql.read() as s:
            row = _schedule_row(s, project, name)
            rows = s.scalars(
                select(PipelineScheduleFireRow)
                .where(PipelineScheduleFireRow.schedule_id == row.id)
                .order_by(PipelineScheduleFireRow.id.desc())
                .limit(limit)
            ).all()
            return [_fire(f, project, name) for f in rows]

    def fires_in(self, states: Sequence[str]) -> list[FireRecord]:
        """Every fire in one of ``states``, oldest first."""
        with self._sql.read() as s:
            rows = s.execute(
                select(PipelineScheduleFireRow, PipelineScheduleRow.name, ProjectRow.name)
                .join(
                    PipelineScheduleRow,
                    PipelineScheduleRow.id == PipelineScheduleFireRow.schedule_id,
                )
                .join(ProjectRow, ProjectRow.id == PipelineScheduleRow.project_id)
                .where(PipelineScheduleFireRow.state.in_(list(states)))
                .order_by(PipelineScheduleFireRow.id)
            ).all()
            return [_fire(f, project, name) for f, name, project in rows]

    def find_pipeline_run(self, project: str, schedule_id: str, since: float) -> str | None:
        """The first top-level run of ``project`` tagged with this schedule's id that
        started at or after ``since``: the pipeline run a fire started."""
        with self._sql.read() as s:
            return s.scalar(
                select(RunRow.id)
                .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
                .join(ProjectRow, ProjectRow.id == ExperimentRow.project_id)
                .join(RunTagRow, RunTagRow.run_id == RunRow.id)
                .where(
                    ProjectRow.name == project,
                    RunRow.parent_run_id.is_(None),
                    RunRow.start_time_ms >= int(since * 1000),
                    RunTagRow.key == PIPELINE_SCHEDULE_TAG,
                    RunTagRow.value == schedule_id,
                )
                .order_by(RunRow.start_time_ms, RunRow.id)
                .limit(1)
            )


def _project_id(s: Session, project: str) -> str:
    project_id = s.scalar(select(ProjectRow.id).where(ProjectRow.name == project))
    if project_id is None:
        raise NotFound(f"project {project!r} does not exist")
    return project_id


def _schedule_row(
    s: Session, project: str, name: str, *, lock: bool = False
) -> PipelineScheduleRow:
    q = select(PipelineScheduleRow).where(
        PipelineScheduleRow.project_id == _project_id(s, project),
        PipelineScheduleRow.name == name,
    )
    row = s.scalar(q.with_for_update() if lock else q)
    if row is None:
        raise NotFound(f"schedule {name!r} does not exist in project {project!r}")
    return row


def _names(s: Session, row: PipelineScheduleRow) -> tuple[str, str]:
    project = s.scalar(select(ProjectRow.name).where(ProjectRow.id == row.project_id))
    return str(project), row.name


def _active_fire(s: Session, schedule_id: str) -> PipelineScheduleFireRow | None:
    return s.scalar(
        select(PipelineScheduleFireRow)
        .where(
            PipelineScheduleFireRow.schedule_id == schedule_id,
            PipelineScheduleFireRow.state.in_(ACTIVE_FIRE_STATES),
        )
        .limit(1)
    )


def _new_fire(
    schedule_id: str,
    trigger: str,
    by: str,
    now: float,
    state: str,
    tick_at: float | None = None,
    missed: int = 0,
) -> PipelineScheduleFireRow:
    return PipelineScheduleFireRow(
        schedule_id=schedule_id,
        trigger=trigger,
        tick_at=tick_at,
        missed=missed,
        requested_by=by,
        fired_at=now,
        state=state,
        message="",
    )


def _last_states(s: Session, schedule_ids: list[str]) -> dict[str, str]:
    if not schedule_ids:
        return {}
    newest = (
        select(func.max(PipelineScheduleFireRow.id))
        .where(PipelineScheduleFireRow.schedule_id.in_(schedule_ids))
        .group_by(PipelineScheduleFireRow.schedule_id)
    )
    rows = s.execute(
        select(PipelineScheduleFireRow.schedule_id, PipelineScheduleFireRow.state).where(
            PipelineScheduleFireRow.id.in_(newest)
        )
    ).all()
    return {schedule_id: state for schedule_id, state in rows}


def _records(s: Session, *where: ColumnElement[bool]) -> list[ScheduleRecord]:
    rows = s.execute(
        select(PipelineScheduleRow, ProjectRow.name)
        .join(ProjectRow, ProjectRow.id == PipelineScheduleRow.project_id)
        .where(*where)
        .order_by(ProjectRow.name, PipelineScheduleRow.name)
    ).all()
    states = _last_states(s, [row.id for row, _ in rows])
    return [_schedule(row, name, states.get(row.id)) for row, name in rows]


_SCHEDULE_COLUMNS = tuple(
    f.name for f in fields(ScheduleRecord) if f.name not in ("project", "last_state")
)
_FIRE_COLUMNS = tuple(f.name for f in fields(FireRecord) if f.name not in ("project", "schedule"))


def _schedule(r: PipelineScheduleRow, project: str, last_state: str | None) -> ScheduleRecord:
    columns = {name: getattr(r, name) for name in _SCHEDULE_COLUMNS}
    return ScheduleRecord(project=project, last_state=last_state, **columns)


def _fire(f: PipelineScheduleFireRow, project: str, schedule: str) -> FireRecord:
    columns = {name: getattr(f, name) for name in _FIRE_COLUMNS}
    return FireRecord(project=project, schedule=schedule, **columns)
