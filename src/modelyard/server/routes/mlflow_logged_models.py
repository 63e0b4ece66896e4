"""MLflow 3 logged models (``/api/2.0/mlflow/logged-models``).

``mlflow.<flavor>.log_model`` creates a logged model in the run's experiment, uploads
the model directory to its ``artifact_uri`` (``mlflow-artifacts:/<experiment_id>/models/
<model_id>/artifacts``, served by the artifact routes from the namespace
``logged-model:<model_id>``), then finalizes it (status ``LOGGED_MODEL_READY``). A logged
model belongs to its experiment's project; ``model-versions/create`` with source
``models:/<model_id>`` registers it.
"""

from __future__ import annotations

import re

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from modelyard.auth import EXPERIMENT_EDITOR, EXPERIMENT_VIEWER, on_resource
from modelyard.core.entities import Role
from modelyard.core.errors import InvalidInput
from modelyard.server._context import app_context
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server.routes._mlflow_http import MLFLOW_PREFIX, answer, json_body
from modelyard.server.routes._mlflow_model_schemas import (
    LOGGED_MODEL_STATUSES,
    CreateLoggedModelBody,
    FinalizeLoggedModelBody,
    LoggedModelParamsBody,
    LoggedModelTagsBody,
    SearchLoggedModelsBody,
    logged_model_json,
)

api = ApiRouter(MLFLOW_PREFIX, tags=["mlflow"])

LOGGED_MODEL_VIEWER = on_resource("logged_model", Role.VIEWER)
LOGGED_MODEL_EDITOR = on_resource("logged_model", Role.EDITOR)

# One condition of a search filter: <attribute> = '<value>'.
_CONDITION = re.compile(
    r"""^\s*(?:attributes?\.)?(?P<key>name|source_run_id|status|model_type|model_id)\s*=\s*
    (?P<q>['"])(?P<value>.*)(?P=q)\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)


def parse_filter(text: str) -> dict[str, str]:
    """The attribute equalities of a ``logged-models/search`` filter.

    Supported: conditions ``name``, ``source_run_id``, ``status``, ``model_type`` or
    ``model_id`` ``= '<value>'``, joined by ``AND`` (what the client itself sends).

    Raises:
        InvalidInput: any other filter, naming it.
    """
    equals: dict[str, str] = {}
    if not text.strip():
        return equals
    for part in _AND.split(text.strip()):
        match = _CONDITION.match(part)
        if match is None:
            raise InvalidInput(
                f"unsupported logged model filter {part.strip()!r}: use name, source_run_id, "
                "status, model_type or model_id = '...', joined by AND"
            )
        key = match["key"].lower()
        equals["id" if key == "model_id" else key] = match["value"]
    return equals


@api.route(
    "POST", "/logged-models", permission=EXPERIMENT_EDITOR, action="mlflow.logged_model.create"
)
def create_logged_model(
    request: Request, body: CreateLoggedModelBody = Depends(json_body(CreateLoggedModelBody))
) -> JSONResponse:
    """Answer ``{model}``: a PENDING logged model in the experiment (and run, if named)."""
    ctx = app_context(request)
    caller = current_principal(request)
    if body.source_run_id:
        run = ctx.tracking.get_run(caller, body.source_run_id)
        if run.experiment_id != body.experiment_id:
            raise InvalidInput(
                f"run {body.source_run_id} is not in experiment {body.experiment_id}"
            )
    model = ctx.store.logged_models.create(
        experiment_id=body.experiment_id,
        name=body.name or "model",
        model_type=body.model_type,
        source_run_id=body.source_run_id or None,
        user=caller.user,
        tags={t.key: t.value for t in body.tags},
        params={p.key: p.value for p in body.params},
    )
    set_audit_target(request, f"logged_model:{model.id}")
    return answer({"model": logged_model_json(model)})


@api.route(
    "POST",
    "/logged-models/search",
    permission=EXPERIMENT_VIEWER,
    action="mlflow.logged_model.search",
)
def search_logged_models(
    request: Request, body: SearchLoggedModelsBody = Depends(json_body(SearchLoggedModelsBody))
) -> JSONResponse:
    """Answer ``{models, next_page_token?}``, newest first.

    The client searches ``name = '<path>'`` when it lists or downloads a folder of a run
    (the folder may be a logged model) and when it registers ``runs:/<id>/<path>``.
    ``order_by`` and dataset filters are not supported.
    """
    if body.order_by or body.datasets:
        raise InvalidInput("order_by and datasets are not supported by logged-models/search")
    token = body.page_token or "0"
    if not token.isdigit():
        raise InvalidInput(f"invalid page_token {body.page_token!r}")
    offset = int(token)
    models, more = app_context(request).store.logged_models.search(
        body.experiment_ids,
        equals=parse_filter(body.filter),
        offset=offset,
        limit=body.max_results,
    )
    content: dict[str, object] = {"models": [logged_model_json(m) for m in models]}
    if more:
        content["next_page_token"] = str(offset + len(models))
    return answer(content)


@api.route(
    "GET",
    "/logged-models/{model_id}",
    permission=LOGGED_MODEL_VIEWER,
    action="mlflow.logged_model.get",
)
def get_logged_model(model_id: str, request: Request) -> JSONResponse:
    """Answer ``{model}``."""
    return answer(
        {"model": logged_model_json(app_context(request).store.logged_models.get(model_id))}
    )


@api.route(
    "PATCH",
    "/logged-models/{model_id}",
    permission=LOGGED_MODEL_EDITOR,
    action="mlflow.logged_model.finalize",
)
def finalize_logged_model(
    model_id: str,
    request: Request,
    body: FinalizeLoggedModelBody = Depends(json_body(FinalizeLoggedModelBody)),
) -> JSONResponse:
    """Answer ``{model}`` with its new status (``LOGGED_MODEL_READY`` once uploaded)."""
    if body.status not in LOGGED_MODEL_STATUSES:
        raise InvalidInput(
            f"invalid status {body.status!r}: expected one of {sorted(LOGGED_MODEL_STATUSES)}"
        )
    set_audit_target(request, f"logged_model:{model_id} status:{body.status}")
    model = app_context(request).store.logged_models.set_status(model_id, body.status)
    return answer({"model": logged_model_json(model)})


@api.route(
    "DELETE",
    "/logged-models/{model_id}",
    permission=LOGGED_MODEL_EDITOR,
    action="mlflow.logged_model.delete",
)
def delete_logged_model(model_id: str, request: Request) -> JSONResponse:
    """Remove the logged model and its files' index; a later get is RESOURCE_DOES_NOT_EXIST.

    Versions registered from it keep their files.
    """
    set_audit_target(request, f"logged_model:{model_id}")
    app_context(request).store.logged_models.delete(model_id)
    return answer()


@api.route(
    "PATCH",
    "/logged-models/{model_id}/tags",
    permission=LOGGED_MODEL_EDITOR,
    action="mlflow.logged_model.set_tags",
)
def set_logged_model_tags(
    model_id: str,
    request: Request,
    body: LoggedModelTagsBody = Depends(json_body(LoggedModelTagsBody)),
) -> JSONResponse:
    """Set (or overwrite) tags; answers ``{model}``."""
    set_audit_target(request, f"logged_model:{model_id}")
    tags = {t.key: t.value for t in body.tags}
    model = app_context(request).store.logged_models.set_tags(model_id, tags)
    return answer({"model": logged_model_json(model)})


@api.route(
    "DELETE",
    "/logged-models/{model_id}/tags/{tag_key}",
    permission=LOGGED_MODEL_EDITOR,
    action="mlflow.logged_model.delete_tag",
)
def delete_logged_model_tag(model_id: str, tag_key: str, request: Request) -> JSONResponse:
    """Remove one tag; RESOURCE_DOES_NOT_EXIST when the model has no such tag."""
    set_audit_target(request, f"logged_model:{model_id} tag:{tag_key}")
    app_context(request).store.logged_models.delete_tag(model_id, tag_key)
    return answer()


@api.route(
    "POST",
    "/logged-models/{model_id}/params",
    permission=LOGGED_MODEL_EDITOR,
    action="mlflow.logged_model.log_params",
)
def log_logged_model_params(
    model_id: str,
    request: Request,
    body: LoggedModelParamsBody = Depends(json_body(LoggedModelParamsBody)),
) -> JSONResponse:
    """Record params of the model."""
    set_audit_target(request, f"logged_model:{model_id}")
    params = {p.key: p.value for p in body.params}
    app_context(request).store.logged_models.log_params(model_id, params)
    return answer()
