"""/ui/p/{project}/...: experiments, the runs table, a run, and runs compared side by side.

The runs table is one page of the tracking service's search (the same filter and order_by
grammar as the API, indexed and paged in SQL), so it costs the same with 10 runs or
10,000. A run named in the URL that belongs to another project is a 404, as if it did not
exist.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response

from modelyard.auth import PROJECT_VIEWER, Principal
from modelyard.core.errors import InvalidInput, NotFound, PermissionDenied
from modelyard.core.lineage import Direction
from modelyard.core.tracking import Experiment, Run, run_artifact_namespace
from modelyard.server._context import AppContext, app_context
from modelyard.server._routing import current_principal
from modelyard.server.routes._ui import ui_router, want_int
from modelyard.ui import render
from modelyard.ui.runs_view import (
    DEFAULT_ORDER,
    chart_spec,
    compare_sections,
    default_columns,
    duration_s,
    keys_on_page,
    next_order,
    parse_columns,
    run_neighbours,
    sort_mark,
)

api = ui_router()

MAX_CHART_POINTS = 2000  # per series on a run's page
MAX_COMPARE_POINTS = 1000  # per series on the compare page
MAX_CHARTS = 30
MAX_ARTIFACTS = 500
MAX_FILTER_LENGTH = 2000
MAX_ORDER_LENGTH = 300
MIN_COMPARE, MAX_COMPARE = 2, 10


def _experiment(ctx: AppContext, caller: Principal, project: str, ident: str) -> Experiment:
    """The experiment ``ident`` of ``project``; NotFound for any other."""
    if not ident.isdigit() or len(ident) > 18:
        raise NotFound(f"experiment {ident!r} does not exist")
    try:
        experiment = ctx.tracking.get_experiment(caller, int(ident))
    except PermissionDenied:
        experiment = None
    if experiment is None or experiment.project != project:
        raise NotFound(f"experiment {ident!r} does not exist in project {project!r}")
    return experiment


def _run(ctx: AppContext, caller: Principal, project: str, run_id: str) -> Run:
    """The run ``run_id`` of ``project``; NotFound for any other."""
    try:
        run = ctx.tracking.get_run(caller, run_id)
    except PermissionDenied:
        run = None
    if run is None or run.project != project:
        raise NotFound(f"run {run_id!r} does not exist in project {project!r}")
    return run


@api.route(
    "GET", "/p/{project}/experiments", permission=PROJECT_VIEWER, action="ui.experiments.list"
)
def experiments_page(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    ctx = app_context(request)
    max_results = want_int(request.query_params.get("max_results"), "max_results", 100, 1, 1000)
    page = ctx.tracking.list_experiments(
        caller, project, max_results=max_results, page_token=request.query_params.get("page_token")
    )
    stats = ctx.tracking.run_stats(caller, project)
    rows = [
        {"experiment": e, "runs": stats.get(e.id, (0, None))[0], "last_run": stats.get(e.id)}
        for e in page.items
    ]
    return render(
        request,
        "runs/experiments.html",
        section="runs",
        rows=rows,
        next_page_token=page.next_page_token,
    )


@api.route(
    "GET",
    "/p/{project}/experiments/{experiment_id}",
    permission=PROJECT_VIEWER,
    action="ui.runs.list",
)
def runs_page(
    project: str,
    experiment_id: str,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> Response:
    """The runs table: one page of the search, sorted and filtered as asked."""
    ctx = app_context(request)
    experiment = _experiment(ctx, caller, project, experiment_id)
    query = request.query_params
    max_results = want_int(query.get("max_results"), "max_results", 50, 1, 500)
    chosen = parse_columns(query.getlist("col"))
    filter_text = query.get("filter", "").strip()
    order = query.get("order", "").strip() or DEFAULT_ORDER
    page_token = query.get("page_token") or None
    if len(filter_text) > MAX_FILTER_LENGTH:
        raise InvalidInput(f"filter is longer than {MAX_FILTER_LENGTH} characters")
    if len(order) > MAX_ORDER_LENGTH:
        raise InvalidInput(f"order is longer than {MAX_ORDER_LENGTH} characters")
    error, status, runs, next_token = "", 200, [], None
    try:
        page = ctx.tracking.search_runs(
            caller,
            [experiment.id],
            filter_string=filter_text or None,
            order_by=[order],
            max_results=max_results,
            page_token=page_token,
        )
        runs, next_token = page.items, page.next_page_token
    except InvalidInput as exc:  # the parser's message, shown above the table
        error, status = exc.message, 400
    columns = chosen if chosen is not None else default_columns(runs, order)
    rows = [{"run": r, "duration": duration_s(r)} for r in runs]
    choices = keys_on_page(runs)
    choices += [c for c in columns if c not in choices]
    return render(
        request,
        "runs/table.html",
        status,
        section="runs",
        experiment=experiment,
        rows=rows,
        columns=columns,
        chosen=chosen,
        choices=choices,
        filter=filter_text,
        order=order,
        max_results=max_results,
        page_token=page_token,
        next_page_token=next_token,
        error=error,
        next_order=next_order,
        sort_mark=sort_mark,
    )


@api.route("GET", "/p/{project}/runs/{run_id}", permission=PROJECT_VIEWER, action="ui.runs.get")
def run_page(
    project: str, run_id: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    ctx = app_context(request)
    run = _run(ctx, caller, project, run_id)
    experiment = ctx.tracking.get_experiment(caller, run.experiment_id)
    keys = sorted(run.metrics)[:MAX_CHARTS]
    histories = ctx.tracking.sampled_metric_history(
        caller, run.id, keys, max_points=MAX_CHART_POINTS
    )
    charts = [chart_spec(key, [(key, histories.get(key, []))]) for key in keys]
    graph = ctx.lineage.graph(caller, project, "run", run.id, Direction.BOTH, depth=1)
    artifacts = ctx.store.artifacts.list(run_artifact_namespace(run.id))
    system_tags = {k: v for k, v in run.tags.items() if k.startswith("mlflow.")}
    user_tags = {k: v for k, v in run.tags.items() if not k.startswith("mlflow.")}
    return render(
        request,
        "runs/detail.html",
        section="runs",
        run=run,
        experiment=experiment,
        duration=duration_s(run),
        charts=charts,
        more_charts=max(0, len(run.metrics) - len(keys)),
        linked=run_neighbours(graph, run.id),
        artifacts=artifacts[:MAX_ARTIFACTS],
        more_artifacts=max(0, len(artifacts) - MAX_ARTIFACTS),
        user_tags=user_tags,
        system_tags=system_tags,
    )


@api.route("GET", "/p/{project}/compare", permission=PROJECT_VIEWER, action="ui.runs.compare")
def compare_page(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    """2 to 10 runs side by side, and one overlaid chart per metric key."""
    ctx = app_context(request)
    ids = [i for i in request.query_params.getlist("run") if i]
    if not MIN_COMPARE <= len(ids) <= MAX_COMPARE:
        raise InvalidInput(
            f"choose between {MIN_COMPARE} and {MAX_COMPARE} runs to compare, got {len(ids)}"
        )
    duplicate = next((i for n, i in enumerate(ids) if i in ids[:n]), None)
    if duplicate is not None:
        raise InvalidInput(f"run {duplicate!r} is named twice")
    runs = [_run(ctx, caller, project, run_id) for run_id in ids]
    keys = sorted({k for r in runs for k in r.metrics})[:MAX_CHARTS]
    histories = [
        ctx.tracking.sampled_metric_history(
            caller, r.id, [k for k in keys if k in r.metrics], max_points=MAX_COMPARE_POINTS
        )
        for r in runs
    ]
    charts = [
        chart_spec(
            key,
            [
                (f"{r.name} ({r.id[:8]})", h[key])
                for r, h in zip(runs, histories, strict=True)
                if key in h
            ],
        )
        for key in keys
    ]
    all_keys = {k for r in runs for k in r.metrics}
    return render(
        request,
        "runs/compare.html",
        section="runs",
        runs=runs,
        sections=compare_sections(runs),
        charts=charts,
        more_charts=max(0, len(all_keys) - len(keys)),
    )
