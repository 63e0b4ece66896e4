"""/api/v1 cost routes: reports (per project, across the caller's projects, per
deployment), right-sizing hints and cost-allocation tags."""

from __future__ import annotations

from fastapi import Depends, Query, Request

from modelyard.auth import AUTHENTICATED, PROJECT_ADMIN, PROJECT_EDITOR, PROJECT_VIEWER, Principal
from modelyard.server._context import app_context
from modelyard.server._cost_schemas import TagsIn, TagsOut
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target

api = ApiRouter("/api/v1", tags=["cost"])
_P = "/projects/{project}/cost"
_BY = Query(default="deployment", max_length=32, description="deployment, project, tag or run")
_SINCE = Query(default="7d", max_length=64, description="7d, 12h, 2026-11-01, …")
_UNTIL = Query(default=None, max_length=64, description="default: now")
_TAG_KEY = Query(default=None, max_length=128, description="with by=tag: group by this key")


@api.route("GET", _P + "/report", permission=PROJECT_VIEWER, action="cost.report")
def report(
    project: str,
    request: Request,
    by: str = _BY,
    since: str = _SINCE,
    until: str | None = _UNTIL,
    tag_key: str | None = _TAG_KEY,
    caller: Principal = Depends(current_principal),
) -> dict[str, object]:
    """The project's cost per deployment, tag or run over a period, with a total."""
    return app_context(request).cost.report(
        caller, project=project, by=by, since=since, until=until, tag_key=tag_key
    )


@api.route("GET", "/cost/report", permission=AUTHENTICATED, action="cost.report_all")
def report_all(
    request: Request,
    by: str = Query(default="project", max_length=32),
    since: str = _SINCE,
    until: str | None = _UNTIL,
    tag_key: str | None = _TAG_KEY,
    caller: Principal = Depends(current_principal),
) -> dict[str, object]:
    """Cost over every project the caller has a role in (every project: platform admin)."""
    return app_context(request).cost.report(
        caller, project=None, by=by, since=since, until=until, tag_key=tag_key
    )


@api.route("GET", _P + "/deployments/{name}", permission=PROJECT_VIEWER, action="cost.deployment")
def deployment_report(
    project: str,
    name: str,
    request: Request,
    since: str = _SINCE,
    until: str | None = _UNTIL,
    caller: Principal = Depends(current_principal),
) -> dict[str, object]:
    """One deployment: $/day, $ per 1k requests, idle share, revisions, right-sizing."""
    return app_context(request).cost.deployment_report(
        caller, project, name, since=since, until=until
    )


@api.route(
    "GET",
    _P + "/deployments/{name}/rightsize",
    permission=PROJECT_VIEWER,
    action="cost.rightsize",
)
def rightsize(
    project: str,
    name: str,
    request: Request,
    window: str = Query(default="7d", max_length=32),
    caller: Principal = Depends(current_principal),
) -> dict[str, object]:
    return app_context(request).cost.rightsize(caller, project, name, window=window)


@api.route("GET", _P + "/tags", permission=PROJECT_VIEWER, action="cost.tags")
def tags(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> dict[str, object]:
    """The project's tags and each live deployment's."""
    return app_context(request).cost.tags(caller, project)


@api.route("PATCH", _P + "/tags", permission=PROJECT_ADMIN, action="cost.tag_project")
def tag_project(
    project: str, body: TagsIn, request: Request, caller: Principal = Depends(current_principal)
) -> TagsOut:
    set_audit_target(request, f"project:{project} tags")
    result = app_context(request).cost.set_project_tags(caller, project, body.set, body.unset)
    return TagsOut(project=project, deployment=None, tags=result)


@api.route(
    "PATCH",
    _P + "/deployments/{name}/tags",
    permission=PROJECT_EDITOR,
    action="cost.tag_deployment",
)
def tag_deployment(
    project: str,
    name: str,
    body: TagsIn,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> TagsOut:
    set_audit_target(request, f"deployment:{name} tags")
    result = app_context(request).cost.set_deployment_tags(
        caller, project, name, body.set, body.unset
    )
    return TagsOut(project=project, deployment=name, tags=result)
