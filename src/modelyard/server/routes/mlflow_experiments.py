"""MLflow's experiment routes (``/api/2.0/mlflow/experiments/...``) over TrackingService.

Experiments created here are ordinary modelyard experiments in the caller's project
(the token's project, else ``default``); ids travel as strings.
"""

from __future__ import annotations

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse

from modelyard.auth import AUTHENTICATED, EXPERIMENT_EDITOR, EXPERIMENT_VIEWER
from modelyard.core.entities import Role
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.core.tracking import LifecycleStage
from modelyard.server._context import app_context
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server.routes._mlflow_http import MLFLOW_PREFIX, answer, home_project, json_body
from modelyard.server.routes._mlflow_schemas import (
    CreateExperimentBody,
    DeleteExperimentTagBody,
    ExperimentRef,
    SearchExperimentsBody,
    SetExperimentTagBody,
    UpdateExperimentBody,
    experiment_json,
)

api = ApiRouter(MLFLOW_PREFIX, tags=["mlflow"])


def _experiment_id(raw: str) -> int:
    if not raw.strip().isdigit():
        raise InvalidInput(f"invalid experiment_id {raw!r}: must be a string of digits")
    return int(raw)


@api.route(
    "GET", "/experiments/get-by-name", permission=AUTHENTICATED, action="mlflow.experiment.get"
)
def get_experiment_by_name(
    request: Request,
    experiment_name: str = Query(min_length=1),
    project: str = Depends(home_project(Role.VIEWER)),
) -> JSONResponse:
    """Answer ``{experiment}``; RESOURCE_DOES_NOT_EXIST when no experiment has the name."""
    ctx = app_context(request)
    found = ctx.tracking.find_experiment(current_principal(request), project, experiment_name)
    if found is None:
        raise NotFound(f"experiment {experiment_name!r} does not exist")
    return answer({"experiment": experiment_json(found)})


@api.route(
    "POST", "/experiments/create", permission=AUTHENTICATED, action="mlflow.experiment.create"
)
def create_experiment(
    request: Request,
    project: str = Depends(home_project(Role.EDITOR)),
    body: CreateExperimentBody = Depends(json_body(CreateExperimentBody)),
) -> JSONResponse:
    """Answer ``{experiment_id}``; a taken name is RESOURCE_ALREADY_EXISTS.

    ``artifact_location`` is ignored: artifacts always go through the server's store.
    """
    ctx = app_context(request)
    tags = {t.key: t.value for t in body.tags}
    experiment = ctx.tracking.create_experiment(
        current_principal(request), project, body.name, tags
    )
    set_audit_target(request, f"experiment:{experiment.id}")
    return answer({"experiment_id": str(experiment.id)})


@api.route("GET", "/experiments/get", permission=EXPERIMENT_VIEWER, action="mlflow.experiment.get")
def get_experiment(request: Request, experiment_id: str = Query()) -> JSONResponse:
    """Answer ``{experiment}``."""
    ctx = app_context(request)
    found = ctx.tracking.get_experiment(current_principal(request), _experiment_id(experiment_id))
    return answer({"experiment": experiment_json(found)})


@api.route(
    "POST", "/experiments/search", permission=AUTHENTICATED, action="mlflow.experiment.search"
)
def search_experiments(
    request: Request,
    project: str = Depends(home_project(Role.VIEWER)),
    body: SearchExperimentsBody = Depends(json_body(SearchExperimentsBody)),
) -> JSONResponse:
    """Answer ``{experiments, next_page_token?}``.

    MLflow's experiment filter (``name``, ``creation_time``, ``last_update_time``,
    ``tags.<key>``, joined by ``AND``) and ``order_by`` (``name``, ``experiment_id``,
    ``creation_time``, ``last_update_time``); without ``order_by``, by id.
    """
    page = app_context(request).tracking.search_experiments(
        current_principal(request),
        project,
        filter_string=body.filter or None,
        order_by=body.order_by or None,
        view=body.view_type,
        max_results=body.max_results,
        page_token=body.page_token or None,
    )
    content: dict[str, object] = {"experiments": [experiment_json(e) for e in page.items]}
    if page.next_page_token:
        content["next_page_token"] = page.next_page_token
    return answer(content)


def _set_stage(request: Request, experiment_id: int, stage: LifecycleStage) -> JSONResponse:
    set_audit_target(request, f"experiment:{experiment_id}")
    ctx = app_context(request)
    ctx.tracking.update_experiment(current_principal(request), experiment_id, lifecycle_stage=stage)
    return answer()


@api.route(
    "POST", "/experiments/delete", permission=EXPERIMENT_EDITOR, action="mlflow.experiment.delete"
)
def delete_experiment(
    request: Request, body: ExperimentRef = Depends(json_body(ExperimentRef))
) -> JSONResponse:
    """Mark the experiment deleted (the Default experiment cannot be)."""
    return _set_stage(request, body.experiment_id, LifecycleStage.DELETED)


@api.route(
    "POST",
    "/experiments/restore",
    permission=EXPERIMENT_EDITOR,
    action="mlflow.experiment.restore",
)
def restore_experiment(
    request: Request, body: ExperimentRef = Depends(json_body(ExperimentRef))
) -> JSONResponse:
    """Make a deleted experiment active again."""
    return _set_stage(request, body.experiment_id, LifecycleStage.ACTIVE)


@api.route(
    "POST", "/experiments/update", permission=EXPERIMENT_EDITOR, action="mlflow.experiment.update"
)
def update_experiment(
    request: Request, body: UpdateExperimentBody = Depends(json_body(UpdateExperimentBody))
) -> JSONResponse:
    """Rename the experiment."""
    set_audit_target(request, f"experiment:{body.experiment_id}")
    ctx = app_context(request)
    ctx.tracking.update_experiment(
        current_principal(request), body.experiment_id, name=body.new_name
    )
    return answer()


@api.route(
    "POST",
    "/experiments/set-experiment-tag",
    permission=EXPERIMENT_EDITOR,
    action="mlflow.experiment.set_tag",
)
def set_experiment_tag(
    request: Request, body: SetExperimentTagBody = Depends(json_body(SetExperimentTagBody))
) -> JSONResponse:
    """Set (or overwrite) one experiment tag."""
    set_audit_target(request, f"experiment:{body.experiment_id}")
    ctx = app_context(request)
    ctx.tracking.set_experiment_tag(
        current_principal(request), body.experiment_id, body.key, body.value
    )
    return answer()


@api.route(
    "POST",
    "/experiments/delete-experiment-tag",
    permission=EXPERIMENT_EDITOR,
    action="mlflow.experiment.delete_tag",
)
def delete_experiment_tag(
    request: Request, body: DeleteExperimentTagBody = Depends(json_body(DeleteExperimentTagBody))
) -> JSONResponse:
    """Remove one experiment tag; RESOURCE_DOES_NOT_EXIST when there is no such tag."""
    set_audit_target(request, f"experiment:{body.experiment_id} tag:{body.key}")
    ctx = app_context(request)
    ctx.tracking.delete_experiment_tag(current_principal(request), body.experiment_id, body.key)
    return answer()
