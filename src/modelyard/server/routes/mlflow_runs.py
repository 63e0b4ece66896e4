"""MLflow's run routes (``/api/2.0/mlflow/runs/...``, ``metrics/get-history``).

Params, metrics and tags go through ``TrackingService.log_batch``, the one write primitive, so
params stay immutable and keys are validated the same way as for the native SDK.
"""

from __future__ import annotations

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse

from modelyard.auth import EXPERIMENT_EDITOR, EXPERIMENT_VIEWER, RUN_EDITOR, RUN_VIEWER
from modelyard.core.errors import InvalidInput
from modelyard.core.tracking import LifecycleStage, LogBatch, Metric
from modelyard.server._context import app_context
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server.routes._mlflow_http import MLFLOW_PREFIX, answer, json_body
from modelyard.server.routes._mlflow_schemas import (
    MAX_BATCH_ITEMS,
    CreateRunBody,
    DatasetInputsBody,
    LogBatchBody,
    LogMetricBody,
    LogParamBody,
    RunRef,
    SearchRunsBody,
    SetTagBody,
    UpdateRunBody,
    WireMetric,
    metric_json,
    run_info_json,
    run_json,
)

api = ApiRouter(MLFLOW_PREFIX, tags=["mlflow"])


def _run_id(run_id: str | None, run_uuid: str | None) -> str:
    found = run_id or run_uuid
    if not found:
        raise InvalidInput("field 'run_id' is required")
    return found


def _log(request: Request, run_id: str, batch: LogBatch) -> JSONResponse:
    set_audit_target(request, f"run:{run_id}")
    app_context(request).tracking.log_batch(current_principal(request), run_id, batch)
    return answer()


def _metric(wire: WireMetric, now_ms: int) -> Metric:
    timestamp_ms = now_ms if wire.timestamp is None else wire.timestamp
    return Metric(wire.key, wire.value, wire.step, timestamp_ms)


@api.route("POST", "/runs/create", permission=EXPERIMENT_EDITOR, action="mlflow.run.create")
def create_run(
    request: Request, body: CreateRunBody = Depends(json_body(CreateRunBody))
) -> JSONResponse:
    """Answer ``{run}``: a RUNNING run; ``mlflow.parentRunId`` in tags makes it a child.

    ``user_id`` is informational: the run's user is the token's user.
    """
    ctx = app_context(request)
    run = ctx.tracking.create_run(
        current_principal(request),
        body.experiment_id,
        name=body.run_name or None,
        tags={t.key: t.value for t in body.tags},
        start_time_ms=body.start_time,
    )
    set_audit_target(request, f"run:{run.id}")
    return answer({"run": run_json(run)})


@api.route("GET", "/runs/get", permission=RUN_VIEWER, action="mlflow.run.get")
def get_run(
    request: Request, run_id: str | None = Query(None), run_uuid: str | None = Query(None)
) -> JSONResponse:
    """Answer ``{run}`` with the latest value of each metric."""
    ctx = app_context(request)
    run = ctx.tracking.get_run(current_principal(request), _run_id(run_id, run_uuid))
    return answer({"run": run_json(run)})


@api.route("POST", "/runs/update", permission=RUN_EDITOR, action="mlflow.run.update")
def update_run(
    request: Request, body: UpdateRunBody = Depends(json_body(UpdateRunBody))
) -> JSONResponse:
    """Answer ``{run_info}`` after setting status, end time and/or name."""
    set_audit_target(request, f"run:{body.id}")
    ctx = app_context(request)
    run = ctx.tracking.update_run(
        current_principal(request),
        body.id,
        status=body.status,
        end_time_ms=body.end_time,
        name=body.run_name or None,
    )
    return answer({"run_info": run_info_json(run)})


@api.route("POST", "/runs/log-parameter", permission=RUN_EDITOR, action="mlflow.run.log_param")
def log_parameter(
    request: Request, body: LogParamBody = Depends(json_body(LogParamBody))
) -> JSONResponse:
    """Log one param; re-setting it to another value is INVALID_PARAMETER_VALUE."""
    return _log(request, body.id, LogBatch(params=((body.key, body.value),)))


@api.route("POST", "/runs/log-metric", permission=RUN_EDITOR, action="mlflow.run.log_metric")
def log_metric(
    request: Request, body: LogMetricBody = Depends(json_body(LogMetricBody))
) -> JSONResponse:
    """Log one metric value (NaN and ±Infinity included); timestamp defaults to now."""
    metric = _metric(body, app_context(request).tracking.now_ms())
    return _log(request, body.id, LogBatch(metrics=(metric,)))


@api.route("POST", "/runs/set-tag", permission=RUN_EDITOR, action="mlflow.run.set_tag")
def set_tag(request: Request, body: SetTagBody = Depends(json_body(SetTagBody))) -> JSONResponse:
    """Set (or overwrite) one run tag; ``mlflow.runName`` renames the run."""
    return _log(request, body.id, LogBatch(tags=((body.key, body.value),)))


@api.route("POST", "/runs/log-batch", permission=RUN_EDITOR, action="mlflow.run.log_batch")
def log_batch(
    request: Request, body: LogBatchBody = Depends(json_body(LogBatchBody))
) -> JSONResponse:
    """Log metrics, params and tags at once, all or nothing (MLflow's size limits)."""
    total = len(body.metrics) + len(body.params) + len(body.tags)
    if total > MAX_BATCH_ITEMS:
        raise InvalidInput(
            f"a batch may hold at most {MAX_BATCH_ITEMS} metrics, params and tags; got {total}"
        )
    now_ms = app_context(request).tracking.now_ms()
    batch = LogBatch(
        metrics=tuple(_metric(m, now_ms) for m in body.metrics),
        params=tuple((p.key, p.value) for p in body.params),
        tags=tuple((t.key, t.value) for t in body.tags),
    )
    return _log(request, body.id, batch)


@api.route("POST", "/runs/search", permission=EXPERIMENT_VIEWER, action="mlflow.run.search")
def search_runs(
    request: Request, body: SearchRunsBody = Depends(json_body(SearchRunsBody))
) -> JSONResponse:
    """Answer ``{runs, next_page_token?}``, filtered and ordered in the store (MLflow grammar)."""
    ctx = app_context(request)
    page = ctx.tracking.search_runs(
        current_principal(request),
        body.experiment_ids,
        filter_string=body.filter or None,
        order_by=body.order_by or None,
        view=body.run_view_type,
        max_results=body.max_results,
        page_token=body.page_token or None,
    )
    content: dict[str, object] = {"runs": [run_json(r) for r in page.items]}
    if page.next_page_token:
        content["next_page_token"] = page.next_page_token
    return answer(content)


@api.route("GET", "/metrics/get-history", permission=RUN_VIEWER, action="mlflow.metric.history")
def get_metric_history(
    request: Request,
    metric_key: str = Query(min_length=1),
    run_id: str | None = Query(None),
    run_uuid: str | None = Query(None),
    max_results: int = Query(100_000, ge=1, le=1_000_000),
    page_token: str | None = Query(None),
) -> JSONResponse:
    """Answer ``{metrics, next_page_token?}``: every value logged, by step then time."""
    ctx = app_context(request)
    page = ctx.tracking.metric_history(
        current_principal(request),
        _run_id(run_id, run_uuid),
        metric_key,
        max_results=max_results,
        page_token=page_token or None,
    )
    content: dict[str, object] = {"metrics": [metric_json(m) for m in page.items]}
    if page.next_page_token:
        content["next_page_token"] = page.next_page_token
    return answer(content)


def _set_stage(request: Request, run_id: str, stage: LifecycleStage) -> JSONResponse:
    set_audit_target(request, f"run:{run_id}")
    app_context(request).tracking.set_run_lifecycle(current_principal(request), run_id, stage)
    return answer()


@api.route("POST", "/runs/delete", permission=RUN_EDITOR, action="mlflow.run.delete")
def delete_run(request: Request, body: RunRef = Depends(json_body(RunRef))) -> JSONResponse:
    """Mark the run deleted (searches skip it unless asked for deleted runs)."""
    return _set_stage(request, body.id, LifecycleStage.DELETED)


@api.route("POST", "/runs/restore", permission=RUN_EDITOR, action="mlflow.run.restore")
def restore_run(request: Request, body: RunRef = Depends(json_body(RunRef))) -> JSONResponse:
    """Make a deleted run active again."""
    return _set_stage(request, body.id, LifecycleStage.ACTIVE)


def _accept_unrecorded(request: Request, body: DatasetInputsBody) -> JSONResponse:
    # Checks that the run exists and is writable; what was sent is not stored yet.
    ctx = app_context(request)
    ctx.tracking.log_batch(current_principal(request), body.id, LogBatch())
    set_audit_target(request, f"run:{body.id}")
    return answer()


@api.route("POST", "/runs/log-inputs", permission=RUN_EDITOR, action="mlflow.run.log_inputs")
def log_inputs(
    request: Request, body: DatasetInputsBody = Depends(json_body(DatasetInputsBody))
) -> JSONResponse:
    """Accept dataset inputs; they are not recorded yet (a known gap)."""
    return _accept_unrecorded(request, body)


@api.route("POST", "/runs/outputs", permission=RUN_EDITOR, action="mlflow.run.log_outputs")
def log_outputs(
    request: Request, body: DatasetInputsBody = Depends(json_body(DatasetInputsBody))
) -> JSONResponse:
    """Accept MLflow 3 logged-model outputs; they are not recorded yet (a known gap)."""
    return _accept_unrecorded(request, body)
