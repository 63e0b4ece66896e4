"""/api/v1/projects/{project}/schedules: pipelines the server runs on a cron (issue 18).

Editors add, change, remove and fire schedules; viewers read them and their fires.
Everything a request gives is checked before anything is written: the name, the cron,
the executor and the target (a ``.py`` file that exists inside
``MODELYARD_PIPELINES_DIR``, symlinks resolved).
"""

from __future__ import annotations

from fastapi import Depends, Query, Request

from modelyard.auth import PROJECT_EDITOR, PROJECT_VIEWER, Principal
from modelyard.core.errors import InvalidInput
from modelyard.pipelines.schedule_fire import resolve_target
from modelyard.pipelines.schedules import (
    ScheduleTiming,
    check_cron,
    check_executor,
    check_schedule_name,
    plan_fires,
)
from modelyard.server._context import app_context
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server._schedule_schemas import FireOut, ScheduleIn, ScheduleOut, SchedulePatch

api = ApiRouter("/api/v1", tags=["schedules"])
_S = "/projects/{project}/schedules"


def _next_fire(
    cron: str, enabled: bool, armed_at: float, last_fire_at: float | None, now: float
) -> float | None:
    return plan_fires(ScheduleTiming(cron, enabled, armed_at), last_fire_at, now).next_fire_s


@api.route("POST", _S, permission=PROJECT_EDITOR, action="schedule.create", status_code=201)
def create_schedule(
    project: str,
    body: ScheduleIn,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> ScheduleOut:
    """Add a schedule; its first fire is the first cron tick after now."""
    set_audit_target(request, f"schedule:{body.name} {body.target} cron:{body.cron}")
    ctx = app_context(request)
    name = check_schedule_name(body.name)
    cron = check_cron(body.cron)
    executor = check_executor(body.executor)
    target = resolve_target(ctx.settings.pipelines_dir, body.target)
    now = ctx.clock.now()
    record = ctx.store.schedules.create(
        project,
        name,
        target=target.relative,
        cron=cron,
        executor=executor,
        enabled=body.enabled,
        created_by=caller.user,
        now=now,
        next_fire_at=_next_fire(cron, body.enabled, now, None, now),
    )
    return ScheduleOut.of(record)


@api.route("GET", _S, permission=PROJECT_VIEWER, action="schedule.list")
def list_schedules(project: str, request: Request) -> list[ScheduleOut]:
    return [ScheduleOut.of(s) for s in app_context(request).store.schedules.list_schedules(project)]


@api.route("GET", _S + "/{name}", permission=PROJECT_VIEWER, action="schedule.show")
def show_schedule(project: str, name: str, request: Request) -> ScheduleOut:
    return ScheduleOut.of(app_context(request).store.schedules.get(project, name))


@api.route("PATCH", _S + "/{name}", permission=PROJECT_EDITOR, action="schedule.update")
def update_schedule(project: str, name: str, body: SchedulePatch, request: Request) -> ScheduleOut:
    """Enable, disable or re-time a schedule. Enabling it again, or a new cron, re-arms
    it: ticks before now never fire (no replay of what it skipped)."""
    changes = " ".join(f"{k}={v}" for k, v in body.model_dump(exclude_none=True).items())
    set_audit_target(request, f"schedule:{name} {changes}")
    if body.enabled is None and body.cron is None:
        raise InvalidInput("give enabled or cron (or both) to change")
    ctx = app_context(request)
    cron = check_cron(body.cron) if body.cron is not None else None
    repo = ctx.store.schedules
    current = repo.get(project, name)
    now = ctx.clock.now()
    enabled = current.enabled if body.enabled is None else body.enabled
    new_cron = cron if cron is not None else current.cron
    rearm = (enabled and not current.enabled) or new_cron != current.cron
    armed_at = now if rearm else current.armed_at
    record = repo.update(
        project,
        name,
        enabled=body.enabled,
        cron=cron,
        armed_at=armed_at if rearm else None,
        next_fire_at=_next_fire(new_cron, enabled, armed_at, current.last_fire_at, now),
    )
    return ScheduleOut.of(record)


@api.route("DELETE", _S + "/{name}", permission=PROJECT_EDITOR, action="schedule.delete")
def delete_schedule(project: str, name: str, request: Request) -> dict[str, object]:
    """Remove a schedule and its fire history; a fire still running runs to its end."""
    set_audit_target(request, f"schedule:{name}")
    app_context(request).store.schedules.delete(project, name)
    return {"deleted": name}


@api.route(
    "POST", _S + "/{name}/run", permission=PROJECT_EDITOR, action="schedule.run", status_code=202
)
def run_schedule(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> FireOut:
    """Fire now: queued (PENDING) for the server's scheduler, which starts it within a
    second. Refused (409) while a fire of the schedule is pending or running."""
    set_audit_target(request, f"schedule:{name}")
    ctx = app_context(request)
    fire = ctx.store.schedules.request_fire(project, name, by=caller.user, now=ctx.clock.now())
    return FireOut.of(fire)


@api.route("GET", _S + "/{name}/fires", permission=PROJECT_VIEWER, action="schedule.fires")
def schedule_fires(
    project: str,
    name: str,
    request: Request,
    limit: int = Query(default=50, ge=1, le=1000),
) -> list[FireOut]:
    """The schedule's fires, newest first."""
    fires = app_context(request).store.schedules.fires(project, name, limit=limit)
    return [FireOut.of(f) for f in fires]
