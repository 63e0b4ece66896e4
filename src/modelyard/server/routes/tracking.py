"""/api/v1 experiments and runs: the native tracking API the SDK and CLI use."""

from __future__ import annotations

from fastapi import Depends, Query, Request
from fastapi.responses import StreamingResponse

from modelyard.auth import (
    EXPERIMENT_EDITOR,
    EXPERIMENT_VIEWER,
    PROJECT_EDITOR,
    PROJECT_VIEWER,
    RUN_EDITOR,
    RUN_VIEWER,
    Principal,
)
from modelyard.core.tracking import LogBatch, Metric, run_artifact_namespace
from modelyard.server._context import app_context
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server._schemas import ArtifactOut
from modelyard.server._tracking_schemas import (
    ExperimentCreate,
    ExperimentOut,
    LogBatchIn,
    LogBatchOut,
    MetricIn,
    MetricOut,
    MetricPage,
    RunCreate,
    RunOut,
    RunPage,
    RunSearch,
    RunUpdate,
)
from modelyard.server.routes.artifacts import download_from_namespace, upload_to_namespace
from modelyard.tracking.validation import parse_metric_value

api = ApiRouter("/api/v1", tags=["tracking"])


@api.route(
    "POST",
    "/projects/{project}/experiments",
    permission=PROJECT_EDITOR,
    action="experiment.create",
    status_code=201,
)
def create_experiment(
    project: str,
    body: ExperimentCreate,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> ExperimentOut:
    set_audit_target(request, f"experiment:{body.name}")
    tracking = app_context(request).tracking
    return ExperimentOut.of(tracking.create_experiment(caller, project, body.name, body.tags))


@api.route(
    "GET", "/projects/{project}/experiments", permission=PROJECT_VIEWER, action="experiment.list"
)
def list_experiments(
    project: str,
    request: Request,
    name: str | None = Query(None, max_length=256, description="exact name"),
    caller: Principal = Depends(current_principal),
) -> list[ExperimentOut]:
    tracking = app_context(request).tracking
    if name is not None:
        found = tracking.find_experiment(caller, project, name)
        return [ExperimentOut.of(found)] if found else []
    page = tracking.list_experiments(caller, project, max_results=50_000)
    return [ExperimentOut.of(e) for e in page.items]


@api.route(
    "GET", "/experiments/{experiment_id}", permission=EXPERIMENT_VIEWER, action="experiment.get"
)
def get_experiment(
    experiment_id: int, request: Request, caller: Principal = Depends(current_principal)
) -> ExperimentOut:
    return ExperimentOut.of(app_context(request).tracking.get_experiment(caller, experiment_id))


@api.route("POST", "/runs", permission=EXPERIMENT_EDITOR, action="run.create", status_code=201)
def create_run(
    body: RunCreate, request: Request, caller: Principal = Depends(current_principal)
) -> RunOut:
    run = app_context(request).tracking.create_run(
        caller,
        body.experiment_id,
        name=body.name,
        tags=body.tags,
        params=body.params,
        parent_run_id=body.parent_run_id,
        start_time_ms=body.start_time_ms,
    )
    set_audit_target(request, f"run:{run.id}")
    return RunOut.of(run)


@api.route("POST", "/runs/search", permission=EXPERIMENT_VIEWER, action="run.search")
def search_runs(
    body: RunSearch, request: Request, caller: Principal = Depends(current_principal)
) -> RunPage:
    page = app_context(request).tracking.search_runs(
        caller,
        body.experiment_ids,
        filter_string=body.filter,
        order_by=body.order_by,
        view=body.view,
        max_results=body.max_results,
        page_token=body.page_token,
    )
    return RunPage(runs=[RunOut.of(r) for r in page.items], next_page_token=page.next_page_token)


@api.route("GET", "/runs/{run_id}", permission=RUN_VIEWER, action="run.get")
def get_run(
    run_id: str, request: Request, caller: Principal = Depends(current_principal)
) -> RunOut:
    return RunOut.of(app_context(request).tracking.get_run(caller, run_id))


@api.route("PATCH", "/runs/{run_id}", permission=RUN_EDITOR, action="run.update")
def update_run(
    run_id: str,
    body: RunUpdate,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> RunOut:
    set_audit_target(request, f"run:{run_id} status:{body.status}")
    run = app_context(request).tracking.update_run(
        caller, run_id, status=body.status, end_time_ms=body.end_time_ms, name=body.name
    )
    return RunOut.of(run)


@api.route("POST", "/runs/{run_id}/log-batch", permission=RUN_EDITOR, action="run.log")
def log_batch(
    run_id: str,
    body: LogBatchIn,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> LogBatchOut:
    tracking = app_context(request).tracking
    now_ms = tracking.now_ms()
    batch = LogBatch(
        metrics=tuple(_metric(m, now_ms) for m in body.metrics),
        params=tuple(body.params.items()),
        tags=tuple(body.tags.items()),
        batch_id=body.batch_id,
    )
    set_audit_target(request, f"run:{run_id} batch:{body.batch_id or '-'}")
    applied = tracking.log_batch(caller, run_id, batch, end_status=body.end_status)
    return LogBatchOut(applied=applied)


def _metric(item: MetricIn | tuple[str, float | str, int, int | None], now_ms: int) -> Metric:
    if isinstance(item, MetricIn):
        key, value, step, ts = item.key, item.value, item.step, item.timestamp_ms
    else:
        key, value, step, ts = item
    return Metric(key, parse_metric_value(value), step, now_ms if ts is None else ts)


@api.route(
    "GET", "/runs/{run_id}/metrics/{key:path}", permission=RUN_VIEWER, action="run.metric.history"
)
def metric_history(
    run_id: str,
    key: str,
    request: Request,
    max_results: int = Query(100_000, ge=1, le=1_000_000),
    page_token: str | None = Query(None, max_length=200),
    caller: Principal = Depends(current_principal),
) -> MetricPage:
    page = app_context(request).tracking.metric_history(
        caller, run_id, key, max_results=max_results, page_token=page_token
    )
    return MetricPage(
        metrics=[MetricOut.of(m) for m in page.items], next_page_token=page.next_page_token
    )


@api.route(
    "PUT",
    "/runs/{run_id}/artifacts/{path:path}",
    permission=RUN_EDITOR,
    action="run.artifact.put",
    status_code=201,
)
async def put_run_artifact(run_id: str, path: str, request: Request) -> ArtifactOut:
    return await upload_to_namespace(request, run_artifact_namespace(run_id), path)


@api.route("GET", "/runs/{run_id}/artifacts", permission=RUN_VIEWER, action="run.artifact.list")
def list_run_artifacts(
    run_id: str, request: Request, prefix: str = Query("", max_length=1024)
) -> list[ArtifactOut]:
    entries = app_context(request).store.artifacts.list(run_artifact_namespace(run_id), prefix)
    return [ArtifactOut.of(e) for e in entries]


@api.route(
    "GET",
    "/runs/{run_id}/artifacts/{path:path}",
    permission=RUN_VIEWER,
    action="run.artifact.get",
    response_class=StreamingResponse,
)
def get_run_artifact(run_id: str, path: str, request: Request) -> StreamingResponse:
    return download_from_namespace(app_context(request), run_artifact_namespace(run_id), path)
