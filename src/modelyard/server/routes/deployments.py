"""/api/v1/projects/{project}/deployments: desired state of deployments, and their events."""

from __future__ import annotations

from typing import Literal

from fastapi import Depends, Query, Request

from modelyard.auth import PROJECT_EDITOR, PROJECT_VIEWER, Principal
from modelyard.core.backends import BackendSpec
from modelyard.core.deployments import ScalingConfig
from modelyard.deploy.service import RolloutRequest
from modelyard.server._context import app_context
from modelyard.server._deploy_schemas import (
    DeploymentCreate,
    DeploymentOut,
    DeploymentUpdate,
    EventOut,
    ManifestsOut,
    ShadowSet,
    TrafficSet,
)
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target

api = ApiRouter("/api/v1/projects/{project}/deployments", tags=["deployments"])


@api.route("POST", "", permission=PROJECT_EDITOR, action="deployment.create", status_code=201)
def create_deployment(
    project: str,
    body: DeploymentCreate,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> DeploymentOut:
    set_audit_target(request, f"deployment:{body.name} model:{body.model}")
    config = ScalingConfig().merged(body.scaling.changes())
    view = app_context(request).deployments.create(
        caller, project, body.name, body.model, config,
        body.runtime.settings() if body.runtime is not None else None,
        body.backend.spec() if body.backend is not None else None,
    )  # fmt: skip
    return DeploymentOut.of(view)


@api.route("GET", "", permission=PROJECT_VIEWER, action="deployment.list")
def list_deployments(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> list[DeploymentOut]:
    return [DeploymentOut.of(v) for v in app_context(request).deployments.list_all(caller, project)]


@api.route("GET", "/{name}", permission=PROJECT_VIEWER, action="deployment.get")
def get_deployment(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> DeploymentOut:
    return DeploymentOut.of(app_context(request).deployments.get(caller, project, name))


@api.route("GET", "/{name}/manifests", permission=PROJECT_VIEWER, action="deployment.render")
def render_deployment(
    project: str,
    name: str,
    request: Request,
    kind: Literal["kubernetes"] = Query(default="kubernetes"),
    namespace: str = Query(default="", max_length=63),
    autoscaler: Literal["", "hpa", "keda", "knative"] = Query(default=""),
    image: str = Query(default="", max_length=512),
    caller: Principal = Depends(current_principal),
) -> ManifestsOut:
    """The manifests that would run the deployment on ``kind`` (reviewable, GitOps);
    options left empty come from the deployment's own backend, then the defaults."""
    overrides = BackendSpec(kind=kind, namespace=namespace, autoscaler=autoscaler, image=image)
    files = app_context(request).deployments.render(caller, project, name, overrides)
    return ManifestsOut(files=files)


@api.route("PATCH", "/{name}", permission=PROJECT_EDITOR, action="deployment.update")
def update_deployment(
    project: str,
    name: str,
    body: DeploymentUpdate,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> DeploymentOut:
    set_audit_target(request, f"deployment:{name}" + (f" model:{body.model}" if body.model else ""))
    rollout = RolloutRequest(
        strategy=body.strategy,
        steps=tuple(body.steps),
        step_interval_s=body.step_interval_s,
        max_error_rate=body.max_error_rate,
        max_p99_ratio=body.max_p99_ratio,
    )
    view = app_context(request).deployments.update(
        caller, project, name,
        model=body.model, rollout=rollout, scaling=body.scaling.changes(),
        settings=body.runtime.settings() if body.runtime is not None else None,
    )  # fmt: skip
    return DeploymentOut.of(view)


@api.route("PUT", "/{name}/traffic", permission=PROJECT_EDITOR, action="deployment.traffic")
def set_traffic(
    project: str,
    name: str,
    body: TrafficSet,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> DeploymentOut:
    set_audit_target(request, f"deployment:{name}")
    view = app_context(request).deployments.set_traffic(caller, project, name, body.weights)
    return DeploymentOut.of(view)


@api.route("PUT", "/{name}/shadow", permission=PROJECT_EDITOR, action="deployment.shadow")
def set_shadow(
    project: str,
    name: str,
    body: ShadowSet,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> DeploymentOut:
    set_audit_target(request, f"deployment:{name} shadow:{body.version}")
    view = app_context(request).deployments.set_shadow(
        caller, project, name, body.version, body.percent
    )
    return DeploymentOut.of(view)


@api.route("POST", "/{name}/rollback", permission=PROJECT_EDITOR, action="deployment.rollback")
def rollback(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> DeploymentOut:
    set_audit_target(request, f"deployment:{name}")
    return DeploymentOut.of(app_context(request).deployments.rollback(caller, project, name))


@api.route(
    "DELETE", "/{name}", permission=PROJECT_EDITOR, action="deployment.delete", status_code=202
)  # fmt: skip
def delete_deployment(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> DeploymentOut:
    set_audit_target(request, f"deployment:{name}")
    return DeploymentOut.of(app_context(request).deployments.delete(caller, project, name))


@api.route("GET", "/{name}/events", permission=PROJECT_VIEWER, action="deployment.events")
def list_events(
    project: str,
    name: str,
    request: Request,
    after: int = Query(default=0, ge=0),
    limit: int = Query(default=1000, ge=1, le=10_000),
    kind: str | None = Query(default=None, max_length=16),
    caller: Principal = Depends(current_principal),
) -> list[EventOut]:
    events = app_context(request).deployments.events(
        caller, project, name, after_id=after, limit=limit, kind=kind
    )
    return [EventOut.of(e) for e in events]
