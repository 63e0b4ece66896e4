"""/api/v1 cost routes: reports (per project, across the caller's projects, per
deployment), right-sizing hints (and applying one as a new revision) and cost-allocation
tags."""

from __future__ import annotations

from fastapi import Depends, Query, Request
from pydantic import Field

from modelyard.auth import AUTHENTICATED, PROJECT_ADMIN, PROJECT_EDITOR, PROJECT_VIEWER, Principal
from modelyard.core.deployments import Deployment, RuntimeSettings
from modelyard.deploy.service import DeploymentService, RolloutRequest
from modelyard.server._context import app_context
from modelyard.server._cost_schemas import TagsIn, TagsOut
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server._schemas import Input

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


class RightsizeApply(Input):
    """Which hint to apply: over ``window``, of ``revision`` (the stable one; None: it)."""

    window: str = Field(default="7d", max_length=32)
    revision: int | None = Field(default=None, ge=1)


class _RollingUpdate:
    """``DeploymentService.update`` as a :class:`~modelyard.cost.service.SettingsRollout`:
    new runtime settings, rolled out ``rolling``, with the caller's own permissions."""

    def __init__(self, deployments: DeploymentService) -> None:
        self._deployments = deployments

    def __call__(
        self, caller: Principal, project: str, name: str, settings: RuntimeSettings
    ) -> Deployment:
        rollout = RolloutRequest(strategy="rolling")
        view = self._deployments.update(caller, project, name, rollout=rollout, settings=settings)
        return view.deployment


@api.route(
    "POST",
    _P + "/deployments/{name}/rightsize",
    permission=PROJECT_EDITOR,
    action="cost.rightsize_apply",
)
def apply_rightsize(
    project: str,
    name: str,
    request: Request,
    body: RightsizeApply | None = None,
    caller: Principal = Depends(current_principal),
) -> dict[str, object]:
    """Apply the stable revision's right-sizing hint: a new revision of the same model
    version with the suggested CPU and memory, rolled out ``rolling``. 409 when the
    verdict is "no data" or "right-sized", or a rollout is in progress."""
    body = body or RightsizeApply()
    set_audit_target(request, f"deployment:{name} rightsize")
    ctx = app_context(request)
    return ctx.cost.apply_rightsize(
        caller,
        project,
        name,
        _RollingUpdate(ctx.deployments),
        window=body.window,
        revision=body.revision,
    )


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
