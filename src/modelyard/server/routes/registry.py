"""/api/v1/projects/{project}/models: registered models, versions and aliases."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import StreamingResponse

from modelyard.auth import PROJECT_ADMIN, PROJECT_EDITOR, PROJECT_VIEWER, Principal
from modelyard.core.errors import InvalidInput
from modelyard.core.models import version_namespace
from modelyard.server._context import app_context
from modelyard.server._registry_schemas import (
    AliasChangeOut,
    AliasSet,
    ModelCreate,
    ModelDetail,
    ModelOut,
    VersionCreate,
    VersionOut,
)
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server.routes.artifacts import download_from_namespace

api = ApiRouter("/api/v1/projects/{project}/models", tags=["registry"])


@api.route("POST", "", permission=PROJECT_EDITOR, action="model.create", status_code=201)
def create_model(
    project: str,
    body: ModelCreate,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> ModelOut:
    set_audit_target(request, f"model:{body.name}")
    registry = app_context(request).registry
    return ModelOut.of(
        registry.create_model(caller, project, body.name, body.description, body.tags)
    )


@api.route("GET", "", permission=PROJECT_VIEWER, action="model.list")
def list_models(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> list[ModelOut]:
    return [ModelOut.of(m) for m in app_context(request).registry.list_models(caller, project)]


@api.route("GET", "/{name}", permission=PROJECT_VIEWER, action="model.get")
def get_model(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> ModelDetail:
    registry = app_context(request).registry
    model = registry.get_model(caller, project, name)
    versions = registry.list_versions(caller, project, name)
    return ModelDetail(
        **ModelOut.of(model).model_dump(), versions=[VersionOut.of(v) for v in versions]
    )


@api.route(
    "POST", "/{name}/versions", permission=PROJECT_EDITOR, action="model.version.create",
    status_code=201,
)  # fmt: skip
def create_version(
    project: str,
    name: str,
    body: VersionCreate,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> VersionOut:
    version = app_context(request).registry.register_from_run(
        caller,
        project,
        name,
        body.run_id,
        body.artifact_path,
        description=body.description,
        tags=body.tags,
    )
    set_audit_target(request, f"model:{name} version:{version.version} run:{body.run_id}")
    return VersionOut.of(version)


@api.route("GET", "/{name}/versions/{ref}", permission=PROJECT_VIEWER, action="model.version.get")
def get_version(
    project: str,
    name: str,
    ref: str,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> VersionOut:
    """A version by number, by alias, or ``latest``."""
    return VersionOut.of(app_context(request).registry.resolve(caller, project, name, ref))


@api.route(
    "DELETE", "/{name}/versions/{version}", permission=PROJECT_ADMIN, action="model.version.delete"
)
def delete_version(
    project: str,
    name: str,
    version: int,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> dict[str, int]:
    set_audit_target(request, f"model:{name} version:{version}")
    app_context(request).registry.delete_version(caller, project, name, version)
    return {"deleted": version}


@api.route(
    "GET",
    "/{name}/versions/{version}/files/{path:path}",
    permission=PROJECT_VIEWER,
    action="model.version.file",
    response_class=StreamingResponse,
)
def get_version_file(
    project: str,
    name: str,
    version: int,
    path: str,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> StreamingResponse:
    ctx = app_context(request)
    found = ctx.registry.get_version(caller, project, name, version)
    if path not in {f.path for f in found.files}:
        raise InvalidInput(f"version {version} of {name!r} has no file {path!r}")
    model_id = ctx.store.registry.model_id(project, name)
    return download_from_namespace(ctx, version_namespace(model_id, version), path)


@api.route("PUT", "/{name}/aliases/{alias}", permission=PROJECT_EDITOR, action="model.alias.set")
def set_alias(
    project: str,
    name: str,
    alias: str,
    body: AliasSet,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> AliasChangeOut:
    change = app_context(request).registry.set_alias(caller, project, name, alias, body.version)
    set_audit_target(
        request, f"model:{name} alias:{alias} {change.from_version} -> {change.to_version}"
    )
    return AliasChangeOut.of(change)


@api.route(
    "DELETE", "/{name}/aliases/{alias}", permission=PROJECT_EDITOR, action="model.alias.delete"
)
def delete_alias(
    project: str,
    name: str,
    alias: str,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> AliasChangeOut:
    change = app_context(request).registry.delete_alias(caller, project, name, alias)
    set_audit_target(request, f"model:{name} alias:{alias} {change.from_version} -> none")
    return AliasChangeOut.of(change)


@api.route("GET", "/{name}/history", permission=PROJECT_VIEWER, action="model.alias.history")
def alias_history(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> list[AliasChangeOut]:
    changes = app_context(request).registry.alias_history(caller, project, name)
    return [AliasChangeOut.of(c) for c in changes]
