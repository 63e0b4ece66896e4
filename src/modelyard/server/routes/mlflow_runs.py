"""MLflow's run routes (``/api/2.0/mlflow/runs/...``, ``metrics/...``, ``artifacts/list``).

Params, metrics and tags go through ``TrackingService.log_batch``, the one write primitive, so
params stay immutable and keys are validated the same way as for the native SDK. Dataset
inputs and logged-model inputs/outputs go through ``TrackingService.log_run_io``; a dataset
named after a modelyard dataset version (``<name>@v<N>``) becomes a lineage edge.
"""

from __future__ import annotations

import json

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse

from modelyard.auth import (
    AUTHENTICATED,
    EXPERIMENT_EDITOR,
    EXPERIMENT_VIEWER,
    RUN_EDITOR,
    RUN_VIEWER,
)
from modelyard.core.errors import InvalidInput
from modelyard.core.tracking import (
    LifecycleStage,
    LogBatch,
    Metric,
    Run,
    run_artifact_namespace,
)
from modelyard.server._context import app_context
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server.routes._mlflow_http import MLFLOW_PREFIX, answer, json_body
from modelyard.server.routes._mlflow_schemas import (
    MAX_BATCH_ITEMS,
    CreateRunBody,
    DeleteTagBody,
    ExperimentsRef,
    LogBatchBody,
    LogInputsBody,
    LogMetricBody,
    LogModelBody,
    LogOutputsBody,
    LogParamBody,
    RunRef,
    SearchRunsBody,
    SetTagBody,
    UpdateRunBody,
    WireMetric,
    dataset_summary_json,
    metric_json,
    run_artifact_uri,
    run_info_json,
    run_json,
)
from modelyard.server.routes.mlflow_artifacts import list_one_level

api = ApiRouter(MLFLOW_PREFIX, tags=["mlflow"])
# MLflow's server: mlflow/server/handlers.py and mlflow/utils/search_utils.py.
MAX_RUNS_BULK_HISTORY = 100
MAX_RESULTS_PER_RUN = 2500
MAX_EXPERIMENTS_SEARCH_DATASETS = 20
LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"


def _run_id(run_id: str | None, run_uuid: str | None) -> str:
    found = run_id or run_uuid
    if not found:
        raise InvalidInput("field 'run_id' is required")
    return found


def _log(request: Request, run_id: str, batch: LogBatch) -> JSONResponse:
    set_audit_target(request, f"run:{run_id}")
    app_context(request).tracking.log_batch(current_principal(request), run_id, batch)
    return answer()


def _run_json(request: Request, run: Run) -> dict[str, object]:
    return run_json(run, app_context(request).tracking.run_io([run]).get(run.id))


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
    return answer({"run": _run_json(request, run)})


@api.route("GET", "/runs/get", permission=RUN_VIEWER, action="mlflow.run.get")
def get_run(
    request: Request, run_id: str | None = Query(None), run_uuid: str | None = Query(None)
) -> JSONResponse:
    """Answer ``{run}`` with the latest value of each metric."""
    ctx = app_context(request)
    run = ctx.tracking.get_run(current_principal(request), _run_id(run_id, run_uuid))
    return answer({"run": _run_json(request, run)})


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
    io = ctx.tracking.run_io(page.items)
    content: dict[str, object] = {"runs": [run_json(r, io.get(r.id)) for r in page.items]}
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


@api.route("POST", "/runs/delete-tag", permission=RUN_EDITOR, action="mlflow.run.delete_tag")
def delete_tag(
    request: Request, body: DeleteTagBody = Depends(json_body(DeleteTagBody))
) -> JSONResponse:
    """Remove one run tag; RESOURCE_DOES_NOT_EXIST when the run has no such tag."""
    set_audit_target(request, f"run:{body.id} tag:{body.key}")
    app_context(request).tracking.delete_run_tag(current_principal(request), body.id, body.key)
    return answer()


@api.route("POST", "/runs/log-inputs", permission=RUN_EDITOR, action="mlflow.run.log_inputs")
def log_inputs(
    request: Request, body: LogInputsBody = Depends(json_body(LogInputsBody))
) -> JSONResponse:
    """Record the datasets (and logged models) a run read.

    Each dataset is kept once per experiment, name and digest and comes back in
    ``Run.inputs``; one named ``<dataset>@v<N>`` (or ``<dataset>`` with a digest that
    prefixes a version's manifest digest) after a modelyard dataset of the run's project
    also becomes a lineage ``input`` edge from that version to the run.
    """
    linked = app_context(request).tracking.log_run_io(
        current_principal(request),
        body.id,
        datasets=tuple(d.entity() for d in body.datasets),
        model_inputs=tuple(m.model_id for m in body.models),
    )
    suffix = "".join(f" dataset_version:{v}" for v in linked)
    set_audit_target(request, f"run:{body.id}{suffix}")
    return answer()


@api.route("POST", "/runs/outputs", permission=RUN_EDITOR, action="mlflow.run.log_outputs")
def log_outputs(
    request: Request, body: LogOutputsBody = Depends(json_body(LogOutputsBody))
) -> JSONResponse:
    """Record MLflow 3 logged models a run wrote (``Run.outputs.model_outputs``)."""
    set_audit_target(request, f"run:{body.id}")
    app_context(request).tracking.log_run_io(
        current_principal(request),
        body.id,
        model_outputs=tuple((m.model_id, m.step) for m in body.models),
    )
    return answer()


@api.route("POST", "/runs/log-model", permission=RUN_EDITOR, action="mlflow.run.log_model")
def log_model(
    request: Request, body: LogModelBody = Depends(json_body(LogModelBody))
) -> JSONResponse:
    """Record an MLflow 1/2 ``MLmodel`` description in the run's ``mlflow.log-model.history``.

    As MLflow's server: ``model_json`` must be a JSON object with ``artifact_path``,
    ``flavors`` and ``utc_time_created``; the history tag is a JSON list of them.
    """
    try:
        model = json.loads(body.model_json)
    except ValueError:
        raise InvalidInput("model_json is not valid JSON") from None
    if not isinstance(model, dict):
        raise InvalidInput("model_json must be a JSON object")
    for field in ("artifact_path", "flavors", "utc_time_created"):
        if field not in model:
            raise InvalidInput(f"model_json is missing the field {field!r}")
    if not isinstance(model["flavors"], dict):
        raise InvalidInput("model_json field 'flavors' must be an object")
    ctx = app_context(request)
    caller = current_principal(request)
    run = ctx.tracking.get_run(caller, body.id)
    try:
        earlier = json.loads(run.tags.get(LOG_MODEL_HISTORY_TAG, "[]"))
    except ValueError:
        earlier = []  # a tag someone overwrote by hand: start the history again
    history = [*earlier, model] if isinstance(earlier, list) else [model]
    return _log(request, body.id, LogBatch(tags=((LOG_MODEL_HISTORY_TAG, json.dumps(history)),)))


@api.route(
    "GET",
    "/metrics/get-history-bulk-interval",
    permission=AUTHENTICATED,
    action="mlflow.metric.history_bulk",
)
def get_metric_history_bulk_interval(
    request: Request,
    run_ids: list[str] = Query(min_length=1, max_length=MAX_RUNS_BULK_HISTORY),
    metric_key: str = Query(min_length=1),
    start_step: int | None = Query(None),
    end_step: int | None = Query(None),
    max_results: int = Query(MAX_RESULTS_PER_RUN, ge=1, le=MAX_RESULTS_PER_RUN),
) -> JSONResponse:
    """Answer ``{metrics: [MetricWithRunId]}``: each run's values at sampled steps.

    As MLflow: per run, the steps in ``[start_step, end_step]`` (both or neither) are
    thinned to at most ``max_results``, keeping the first and the last; every value at a
    kept step is returned, by run (in the order asked), step and timestamp. Needs
    ``viewer`` on every run's project.
    """
    if (start_step is None) != (end_step is None):
        raise InvalidInput(
            "If either start step or end step are specified, both must be specified."
        )
    if start_step is not None and end_step is not None and start_step > end_step:
        raise InvalidInput(
            "end_step must be greater than start_step. "
            f"Found start_step={start_step} and end_step={end_step}."
        )
    tracking = app_context(request).tracking
    caller = current_principal(request)
    out: list[object] = []
    for run_id in dict.fromkeys(run_ids):
        history: list[Metric] = []
        token: str | None = None
        while True:
            page = tracking.metric_history(caller, run_id, metric_key, page_token=token)
            history.extend(page.items)
            token = page.next_page_token
            if token is None:
                break
        if start_step is not None and end_step is not None:
            history = [m for m in history if start_step <= m.step <= end_step]
        kept = _sampled_steps(sorted({m.step for m in history}), max_results)
        for metric in history:
            if metric.step in kept:
                out.append({**metric_json(metric), "run_id": run_id})
    return answer({"metrics": out})


def _sampled_steps(steps: list[int], max_results: int) -> set[int]:
    """At most ``max_results`` of the sorted ``steps``, evenly spread, first and last kept."""
    if len(steps) <= max_results:
        return set(steps)
    if max_results == 1:
        return {steps[0]}
    stride = (len(steps) - 1) / (max_results - 1)
    return {steps[round(i * stride)] for i in range(max_results)}


@api.route("GET", "/artifacts/list", permission=RUN_VIEWER, action="mlflow.artifact.list_run")
def list_run_artifacts(
    request: Request,
    run_id: str | None = Query(None),
    run_uuid: str | None = Query(None),
    path: str = Query(""),
    page_token: str | None = Query(None),
) -> JSONResponse:
    """Answer ``{root_uri, files: [{path, is_dir, file_size?}]}`` for one folder of a run.

    ``path`` is relative to the run's artifact root; the listed paths are too. All
    entries come in one page (``page_token`` is accepted and ignored).
    """
    ctx = app_context(request)
    run = ctx.tracking.get_run(current_principal(request), _run_id(run_id, run_uuid))
    folder = path.strip("/")
    if ".." in folder.split("/"):
        raise InvalidInput(f"invalid artifact path {path!r}: '..' is not allowed")
    entries = ctx.store.artifacts.list(run_artifact_namespace(run.id), folder)
    files = list_one_level(entries, folder)
    for item in files:
        item["path"] = f"{folder}/{item['path']}" if folder else item["path"]
    content: dict[str, object] = {"root_uri": run_artifact_uri(run.experiment_id, run.id)}
    if files:
        content["files"] = files
    return answer(content)


@api.route(
    "POST",
    "/experiments/search-datasets",
    permission=EXPERIMENT_VIEWER,
    action="mlflow.experiment.search_datasets",
)
def search_datasets(
    request: Request, body: ExperimentsRef = Depends(json_body(ExperimentsRef))
) -> JSONResponse:
    """Answer ``{dataset_summaries: [{experiment_id, name, digest, context?}]}``.

    Served at MLflow's correct path and at ``/api/2.0mlflow/experiments/search-datasets``,
    the path MLflow 3.17.2's proto declares (a missing slash that its client inherits).
    """
    if len(body.experiment_ids) > MAX_EXPERIMENTS_SEARCH_DATASETS:
        raise InvalidInput(
            "SearchDatasets request cannot specify more than "
            f"{MAX_EXPERIMENTS_SEARCH_DATASETS} experiment_ids. "
            f"Received {len(body.experiment_ids)} experiment_ids."
        )
    found = app_context(request).tracking.experiment_datasets(
        current_principal(request), body.experiment_ids
    )
    return answer({"dataset_summaries": [dataset_summary_json(d) for d in found]})


# MLflow 3.17.2's proto declares SearchDatasets at "/api/2.0mlflow/..." (no slash).
proto_path_api = ApiRouter("/api/2.0mlflow", tags=["mlflow"])
proto_path_api.route(
    "POST",
    "/experiments/search-datasets",
    permission=EXPERIMENT_VIEWER,
    action="mlflow.experiment.search_datasets",
)(search_datasets)
