"""MLflow's model registry routes (``registered-models/...``, ``model-versions/...``).

They map onto modelyard's registry in the caller's project (the token's project, else
``default``): a registered model is a modelyard model, a model version a modelyard
version whose files are the MLflow model directory plus a synthesized ``modelyard.yaml``
(see ``_mlflow_packaging``), and an alias move is recorded in the alias history and the
audit log. A version's files download from ``mlflow-artifacts:/registry/<project>/
<model>/<version>``. Stages are not supported: every version is in stage ``"None"``.
"""

from __future__ import annotations

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from modelyard.auth import AUTHENTICATED
from modelyard.core.entities import Role
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.registry.service import validate_model_name
from modelyard.server._context import AppContext, app_context
from modelyard.server._resources import REGISTRY_ARTIFACT_ROOT
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server.routes._mlflow_http import MLFLOW_PREFIX, answer, home_project, json_body
from modelyard.server.routes._mlflow_model_schemas import (
    AliasRefBody,
    CreateModelVersionBody,
    CreateRegisteredModelBody,
    SetAliasBody,
    model_version_json,
    registered_model_json,
)
from modelyard.server.routes._mlflow_packaging import register_mlflow_model
from modelyard.server.routes._mlflow_schemas import JsonObject, MlflowInput

api = ApiRouter(MLFLOW_PREFIX, tags=["mlflow"])


class _LatestVersionsBody(MlflowInput):
    name: str
    stages: list[str] = Field(default_factory=list)


def _version(raw: str) -> int:
    if not raw.strip().isdigit():
        raise InvalidInput(f"invalid version {raw!r}: must be a positive integer")
    return int(raw)


def _audit(request: Request, project: str, target: str) -> None:
    """Record the project and the target of the change in the audit log."""
    request.state.audit_project = project
    set_audit_target(request, target)


def version_artifact_uri(project: str, name: str, version: int) -> str:
    """The ``mlflow-artifacts:/`` URI a registered version's files download from."""
    return f"mlflow-artifacts:/{REGISTRY_ARTIFACT_ROOT}/{project}/{name}/{version}"


def _model_json(ctx: AppContext, request: Request, project: str, name: str) -> JsonObject:
    caller = current_principal(request)
    model = ctx.registry.get_model(caller, project, name)
    latest = None
    if model.latest_version is not None:
        latest = ctx.registry.get_version(caller, project, name, model.latest_version)
    return registered_model_json(model, latest)


@api.route(
    "POST",
    "/registered-models/create",
    permission=AUTHENTICATED,
    action="mlflow.registered_model.create",
)
def create_registered_model(
    request: Request,
    project: str = Depends(home_project(Role.EDITOR)),
    body: CreateRegisteredModelBody = Depends(json_body(CreateRegisteredModelBody)),
) -> JSONResponse:
    """Answer ``{registered_model}``; a taken name is RESOURCE_ALREADY_EXISTS (400)."""
    _audit(request, project, f"model:{body.name}")
    ctx = app_context(request)
    tags = {t.key: t.value for t in body.tags}
    model = ctx.registry.create_model(
        current_principal(request), project, body.name, body.description, tags
    )
    return answer({"registered_model": registered_model_json(model, None)})


@api.route(
    "GET", "/registered-models/get", permission=AUTHENTICATED, action="mlflow.registered_model.get"
)
def get_registered_model(
    request: Request,
    name: str = Query(min_length=1),
    project: str = Depends(home_project(Role.VIEWER)),
) -> JSONResponse:
    """Answer ``{registered_model}`` with its newest version and its aliases."""
    return answer({"registered_model": _model_json(app_context(request), request, project, name)})


@api.route(
    "POST",
    "/registered-models/get-latest-versions",
    permission=AUTHENTICATED,
    action="mlflow.registered_model.latest_versions",
)
def get_latest_versions(
    request: Request,
    project: str = Depends(home_project(Role.VIEWER)),
    body: _LatestVersionsBody = Depends(json_body(_LatestVersionsBody)),
) -> JSONResponse:
    """Answer ``{model_versions}``: the newest version (every version is in stage None)."""
    ctx = app_context(request)
    caller = current_principal(request)
    model = ctx.registry.get_model(caller, project, body.name)
    stages = {s.lower() for s in body.stages}
    if model.latest_version is None or (stages and "none" not in stages):
        return answer({"model_versions": []})
    latest = ctx.registry.get_version(caller, project, body.name, model.latest_version)
    return answer({"model_versions": [model_version_json(latest)]})


@api.route(
    "POST",
    "/model-versions/create",
    permission=AUTHENTICATED,
    action="mlflow.model_version.create",
)
def create_model_version(
    request: Request,
    project: str = Depends(home_project(Role.EDITOR)),
    body: CreateModelVersionBody = Depends(json_body(CreateModelVersionBody)),
) -> JSONResponse:
    """Answer ``{model_version}``, already READY.

    The registered model must exist (as in MLflow). ``source`` is ``models:/<model_id>``,
    ``runs:/<run_id>/<path>`` or an ``mlflow-artifacts:/`` URI; ``model_id`` alone works too.
    """
    ctx = app_context(request)
    caller = current_principal(request)
    validate_model_name(body.name)
    if ctx.store.registry.find_model(project, body.name) is None:
        raise NotFound(f"registered model {body.name!r} does not exist")
    if not body.source and not body.model_id:
        raise InvalidInput("field 'source' is required")
    version = register_mlflow_model(
        ctx,
        caller,
        project,
        body.name,
        body.source,
        model_id=body.model_id,
        description=body.description,
        tags={t.key: t.value for t in body.tags},
    )
    _audit(request, project, f"model:{body.name} version:{version.version} source:{body.source}")
    return answer({"model_version": model_version_json(version)})


@api.route(
    "GET", "/model-versions/get", permission=AUTHENTICATED, action="mlflow.model_version.get"
)
def get_model_version(
    request: Request,
    name: str = Query(min_length=1),
    version: str = Query(min_length=1),
    project: str = Depends(home_project(Role.VIEWER)),
) -> JSONResponse:
    """Answer ``{model_version}``."""
    ctx = app_context(request)
    found = ctx.registry.get_version(current_principal(request), project, name, _version(version))
    return answer({"model_version": model_version_json(found)})


@api.route(
    "GET",
    "/model-versions/get-download-uri",
    permission=AUTHENTICATED,
    action="mlflow.model_version.download_uri",
)
def get_model_version_download_uri(
    request: Request,
    name: str = Query(min_length=1),
    version: str = Query(min_length=1),
    project: str = Depends(home_project(Role.VIEWER)),
) -> JSONResponse:
    """Answer ``{artifact_uri}``: where the version's MLflow model directory downloads from."""
    ctx = app_context(request)
    found = ctx.registry.get_version(current_principal(request), project, name, _version(version))
    return answer({"artifact_uri": version_artifact_uri(project, name, found.version)})


@api.route("POST", "/registered-models/alias", permission=AUTHENTICATED, action="mlflow.alias.set")
def set_registered_model_alias(
    request: Request,
    project: str = Depends(home_project(Role.EDITOR)),
    body: SetAliasBody = Depends(json_body(SetAliasBody)),
) -> JSONResponse:
    """Point the alias at the version; the move is recorded in the alias history."""
    change = app_context(request).registry.set_alias(
        current_principal(request), project, body.name, body.alias, _version(body.version)
    )
    moved = f"{change.from_version} -> {change.to_version}"
    _audit(request, project, f"model:{body.name} alias:{body.alias} {moved}")
    return answer()


@api.route("GET", "/registered-models/alias", permission=AUTHENTICATED, action="mlflow.alias.get")
def get_model_version_by_alias(
    request: Request,
    name: str = Query(min_length=1),
    alias: str = Query(min_length=1),
    project: str = Depends(home_project(Role.VIEWER)),
) -> JSONResponse:
    """Answer ``{model_version}`` the alias points to (``latest``: the newest version).

    As MLflow: an unknown model is RESOURCE_DOES_NOT_EXIST, an alias the model does not
    have is INVALID_PARAMETER_VALUE ``Registered model alias <alias> not found.``
    """
    ctx = app_context(request)
    caller = current_principal(request)
    model = ctx.registry.get_model(caller, project, name)
    if alias.lower() == "latest":
        if model.latest_version is None:
            raise NotFound(f"Latest version not found for model {name}.")
        number = model.latest_version
    elif alias in model.aliases:
        number = model.aliases[alias]
    else:
        raise InvalidInput(f"Registered model alias {alias} not found.")
    found = ctx.registry.get_version(caller, project, name, number)
    return answer({"model_version": model_version_json(found)})


@api.route(
    "DELETE", "/registered-models/alias", permission=AUTHENTICATED, action="mlflow.alias.delete"
)
def delete_registered_model_alias(
    request: Request,
    project: str = Depends(home_project(Role.EDITOR)),
    body: AliasRefBody = Depends(json_body(AliasRefBody)),
) -> JSONResponse:
    """Remove the alias (recorded in the alias history); an absent alias is a no-op."""
    ctx = app_context(request)
    caller = current_principal(request)
    if body.alias not in ctx.registry.get_model(caller, project, body.name).aliases:
        return answer()
    change = ctx.registry.delete_alias(caller, project, body.name, body.alias)
    _audit(request, project, f"model:{body.name} alias:{body.alias} {change.from_version} -> -")
    return answer()
