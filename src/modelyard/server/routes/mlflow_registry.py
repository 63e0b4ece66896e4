"""MLflow's model registry routes (``registered-models/...``, ``model-versions/...``).

They map onto modelyard's registry in the caller's project (the token's project, else
``default``): a registered model is a modelyard model, a model version a modelyard
version whose files are the MLflow model directory plus a synthesized ``modelyard.yaml``
(see ``_mlflow_packaging``), and an alias move is recorded in the alias history and the
audit log. A version's files download from ``mlflow-artifacts:/registry/<project>/
<model>/<version>``.

Every route of MLflow's ModelRegistryService is here: searches with MLflow's filter
grammar, ``order_by`` and page tokens (``modelyard.store.registry_search``), renames,
descriptions, tags, stages (``None``, ``Staging``, ``Production``, ``Archived``) and
deletes. Reads need the viewer role, writes the editor role, deletes (as on the native
routes) the admin role. A delete or rename that would break a modelyard invariant (an
alias pointing to the version, a live deployment serving it) is refused as MLflow
refuses a bad argument: INVALID_PARAMETER_VALUE (400), the message naming the alias or
deployment.
"""

from __future__ import annotations

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse

from modelyard.auth import AUTHENTICATED
from modelyard.core.entities import Role
from modelyard.core.errors import Conflict, InvalidInput, NotFound
from modelyard.registry.service import validate_model_name
from modelyard.server._context import AppContext, app_context
from modelyard.server._resources import REGISTRY_ARTIFACT_ROOT
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server.routes._mlflow_http import MLFLOW_PREFIX, answer, home_project, json_body
from modelyard.server.routes._mlflow_model_schemas import (
    AliasRefBody,
    CreateModelVersionBody,
    CreateRegisteredModelBody,
    LatestVersionsBody,
    ModelRefBody,
    ModelTagBody,
    ModelTagRefBody,
    RenameModelBody,
    SetAliasBody,
    TransitionStageBody,
    UpdateModelBody,
    UpdateVersionBody,
    VersionRefBody,
    VersionTagBody,
    VersionTagRefBody,
    model_version_json,
    registered_model_json,
)
from modelyard.server.routes._mlflow_packaging import register_mlflow_model
from modelyard.server.routes._mlflow_schemas import JsonObject
from modelyard.store.registry_search import (
    MODEL_DEFAULT_MAX_RESULTS,
    VERSION_DEFAULT_MAX_RESULTS,
)

api = ApiRouter(MLFLOW_PREFIX, tags=["mlflow"])


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
    return registered_model_json(model, ctx.registry.latest_versions(caller, project, name))


def _refused(exc: Conflict) -> InvalidInput:
    """A refused delete or rename as MLflow callers see it: INVALID_PARAMETER_VALUE."""
    return InvalidInput(exc.message)


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
    return answer({"registered_model": registered_model_json(model, ())})


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
    body: LatestVersionsBody = Depends(json_body(LatestVersionsBody)),
) -> JSONResponse:
    """Answer ``{model_versions}``: the newest version of each of ``stages`` (all if none).

    An unknown stage is INVALID_PARAMETER_VALUE, as in MLflow.
    """
    found = app_context(request).registry.latest_versions(
        current_principal(request), project, body.name, body.stages
    )
    return answer({"model_versions": [model_version_json(v) for v in found]})


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


# --- registered models: search, update, rename, delete, tags --------------------------------


@api.route(
    "GET",
    "/registered-models/search",
    permission=AUTHENTICATED,
    action="mlflow.registered_model.search",
)
def search_registered_models(
    request: Request,
    project: str = Depends(home_project(Role.VIEWER)),
    filter_text: str = Query(default="", alias="filter"),
    max_results: int = Query(default=MODEL_DEFAULT_MAX_RESULTS),
    order_by: list[str] = Query(default=[]),
    page_token: str | None = Query(default=None),
) -> JSONResponse:
    """Answer ``{registered_models, next_page_token}``: one page of the matching models.

    ``filter`` takes ``name`` (``= != LIKE ILIKE IN NOT IN``) and ``tags.<key>``
    (``= != LIKE ILIKE``); ``order_by`` ``name``, ``creation_timestamp`` and
    ``last_updated_timestamp`` with ASC/DESC (ties by name). ``max_results`` is 1..1000.
    """
    hits, token = app_context(request).registry.search_models(
        current_principal(request), project, filter_text, order_by, max_results, page_token
    )
    out: JsonObject = {
        "registered_models": [registered_model_json(h.model, h.latest) for h in hits]
    }
    if token:
        out["next_page_token"] = token
    return answer(out)


@api.route(
    "PATCH",
    "/registered-models/update",
    permission=AUTHENTICATED,
    action="mlflow.registered_model.update",
)
def update_registered_model(
    request: Request,
    project: str = Depends(home_project(Role.EDITOR)),
    body: UpdateModelBody = Depends(json_body(UpdateModelBody)),
) -> JSONResponse:
    """Set the description; answer ``{registered_model}``."""
    _audit(request, project, f"model:{body.name} description")
    ctx = app_context(request)
    ctx.registry.update_model(current_principal(request), project, body.name, body.description)
    return answer({"registered_model": _model_json(ctx, request, project, body.name)})


@api.route(
    "POST",
    "/registered-models/rename",
    permission=AUTHENTICATED,
    action="mlflow.registered_model.rename",
)
def rename_registered_model(
    request: Request,
    project: str = Depends(home_project(Role.EDITOR)),
    body: RenameModelBody = Depends(json_body(RenameModelBody)),
) -> JSONResponse:
    """Rename; answer ``{registered_model}``. A taken name is RESOURCE_ALREADY_EXISTS; a
    model a live deployment serves is INVALID_PARAMETER_VALUE naming the deployment."""
    _audit(request, project, f"model:{body.name} -> model:{body.new_name}")
    ctx = app_context(request)
    try:
        ctx.registry.rename_model(current_principal(request), project, body.name, body.new_name)
    except Conflict as exc:
        raise _refused(exc) from None
    return answer({"registered_model": _model_json(ctx, request, project, body.new_name)})


@api.route(
    "DELETE",
    "/registered-models/delete",
    permission=AUTHENTICATED,
    action="mlflow.registered_model.delete",
)
def delete_registered_model(
    request: Request,
    project: str = Depends(home_project(Role.ADMIN)),
    body: ModelRefBody = Depends(json_body(ModelRefBody)),
) -> JSONResponse:
    """Delete the model with its versions, tags and aliases (needs the admin role, as the
    native delete). A model a live deployment serves is INVALID_PARAMETER_VALUE."""
    _audit(request, project, f"model:{body.name}")
    try:
        app_context(request).registry.delete_model(current_principal(request), project, body.name)
    except Conflict as exc:
        raise _refused(exc) from None
    return answer()


@api.route(
    "POST",
    "/registered-models/set-tag",
    permission=AUTHENTICATED,
    action="mlflow.registered_model.set_tag",
)
def set_registered_model_tag(
    request: Request,
    project: str = Depends(home_project(Role.EDITOR)),
    body: ModelTagBody = Depends(json_body(ModelTagBody)),
) -> JSONResponse:
    """Set (or overwrite) a tag of the model."""
    _audit(request, project, f"model:{body.name} tag:{body.key}")
    app_context(request).registry.set_model_tag(
        current_principal(request), project, body.name, body.key, body.value
    )
    return answer()


@api.route(
    "DELETE",
    "/registered-models/delete-tag",
    permission=AUTHENTICATED,
    action="mlflow.registered_model.delete_tag",
)
def delete_registered_model_tag(
    request: Request,
    project: str = Depends(home_project(Role.EDITOR)),
    body: ModelTagRefBody = Depends(json_body(ModelTagRefBody)),
) -> JSONResponse:
    """Remove a tag of the model; an absent tag is a no-op, an absent model 404."""
    _audit(request, project, f"model:{body.name} tag:{body.key}")
    app_context(request).registry.delete_model_tag(
        current_principal(request), project, body.name, body.key
    )
    return answer()


# --- model versions: search, update, stages, delete, tags -----------------------------------


@api.route(
    "GET",
    "/model-versions/search",
    permission=AUTHENTICATED,
    action="mlflow.model_version.search",
)
def search_model_versions(
    request: Request,
    project: str = Depends(home_project(Role.VIEWER)),
    filter_text: str = Query(default="", alias="filter"),
    max_results: int = Query(default=VERSION_DEFAULT_MAX_RESULTS),
    order_by: list[str] = Query(default=[]),
    page_token: str | None = Query(default=None),
) -> JSONResponse:
    """Answer ``{model_versions, next_page_token}``: one page of the matching versions.

    ``filter`` takes ``name`` and ``run_id`` (``= != LIKE ILIKE IN NOT IN``),
    ``source_path`` (``= != LIKE ILIKE``), ``version_number`` (``= != < <= > >=``) and
    ``tags.<key>``; ``order_by`` ``name``, ``version_number``, ``creation_timestamp``,
    ``last_updated_timestamp`` (default: last updated first). ``max_results`` 1..200000.
    """
    found, token = app_context(request).registry.search_versions(
        current_principal(request), project, filter_text, order_by, max_results, page_token
    )
    out: JsonObject = {"model_versions": [model_version_json(v) for v in found]}
    if token:
        out["next_page_token"] = token
    return answer(out)


@api.route(
    "PATCH",
    "/model-versions/update",
    permission=AUTHENTICATED,
    action="mlflow.model_version.update",
)
def update_model_version(
    request: Request,
    project: str = Depends(home_project(Role.EDITOR)),
    body: UpdateVersionBody = Depends(json_body(UpdateVersionBody)),
) -> JSONResponse:
    """Set the version's description; answer ``{model_version}``."""
    number = _version(body.version)
    _audit(request, project, f"model:{body.name} version:{number} description")
    found = app_context(request).registry.update_version(
        current_principal(request), project, body.name, number, body.description
    )
    return answer({"model_version": model_version_json(found)})


@api.route(
    "POST",
    "/model-versions/transition-stage",
    permission=AUTHENTICATED,
    action="mlflow.model_version.transition_stage",
)
def transition_model_version_stage(
    request: Request,
    project: str = Depends(home_project(Role.EDITOR)),
    body: TransitionStageBody = Depends(json_body(TransitionStageBody)),
) -> JSONResponse:
    """Move the version to ``stage``; answer ``{model_version}``.

    With ``archive_existing_versions`` (Staging and Production only) the model's other
    versions in that stage move to Archived in the same transaction.
    """
    number = _version(body.version)
    archive = " archive-existing" if body.archive_existing_versions else ""
    _audit(request, project, f"model:{body.name} version:{number} stage:{body.stage}{archive}")
    found = app_context(request).registry.transition_stage(
        current_principal(request),
        project,
        body.name,
        number,
        body.stage,
        archive_existing=body.archive_existing_versions,
    )
    return answer({"model_version": model_version_json(found)})


@api.route(
    "DELETE",
    "/model-versions/delete",
    permission=AUTHENTICATED,
    action="mlflow.model_version.delete",
)
def delete_model_version(
    request: Request,
    project: str = Depends(home_project(Role.ADMIN)),
    body: VersionRefBody = Depends(json_body(VersionRefBody)),
) -> JSONResponse:
    """Delete the version (admin role, as the native delete). A version an alias points
    to or a live deployment serves is INVALID_PARAMETER_VALUE naming them."""
    number = _version(body.version)
    _audit(request, project, f"model:{body.name} version:{number}")
    try:
        app_context(request).registry.delete_version(
            current_principal(request), project, body.name, number
        )
    except Conflict as exc:
        raise _refused(exc) from None
    return answer()


@api.route(
    "POST",
    "/model-versions/set-tag",
    permission=AUTHENTICATED,
    action="mlflow.model_version.set_tag",
)
def set_model_version_tag(
    request: Request,
    project: str = Depends(home_project(Role.EDITOR)),
    body: VersionTagBody = Depends(json_body(VersionTagBody)),
) -> JSONResponse:
    """Set (or overwrite) a tag of the version."""
    number = _version(body.version)
    _audit(request, project, f"model:{body.name} version:{number} tag:{body.key}")
    app_context(request).registry.set_version_tag(
        current_principal(request), project, body.name, number, body.key, body.value
    )
    return answer()


@api.route(
    "DELETE",
    "/model-versions/delete-tag",
    permission=AUTHENTICATED,
    action="mlflow.model_version.delete_tag",
)
def delete_model_version_tag(
    request: Request,
    project: str = Depends(home_project(Role.EDITOR)),
    body: VersionTagRefBody = Depends(json_body(VersionTagRefBody)),
) -> JSONResponse:
    """Remove a tag of the version; an absent tag is a no-op, an absent version 404."""
    number = _version(body.version)
    _audit(request, project, f"model:{body.name} version:{number} tag:{body.key}")
    app_context(request).registry.delete_version_tag(
        current_principal(request), project, body.name, number, body.key
    )
    return answer()
