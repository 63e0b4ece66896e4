"""/ui/p/{project}/monitoring and /cost: each deployment's drift, alerts and silences
(silencing: editors), and the project's cost, budget, quota and each deployment's cost.

Monitoring pages read what the monitor loop recorded (nothing is computed on a page
view except model quality, which joins labels only where labels were sent). Cost pages
price the ledger for the period asked (``period=``: ``month``, ``2026-11``, ``7d``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.responses import Response

from modelyard.auth import PROJECT_EDITOR, PROJECT_VIEWER, Principal
from modelyard.core.errors import InvalidInput, ModelyardError, NotFound
from modelyard.server._context import app_context
from modelyard.server._routing import current_principal, set_audit_target
from modelyard.server.routes._ui import form_fields, see_other, ui_router, want_int
from modelyard.ui import UI_PREFIX, render
from modelyard.ui.ops_view import (
    budget_state,
    cost_period,
    drift_charts,
    feature_rows,
    finite,
    money,
    percent,
    quality_chart,
    requests_chart,
    rule_since,
    rule_status,
    spend_chart,
    worst_feature,
)

api = ui_router()
T = TypeVar("T")

_MON = "/p/{project}/monitoring"
_COST = "/p/{project}/cost"
DRIFT_HISTORY = 100  # drift results charted
EVENTS_SHOWN = 100  # alert / budget history lines per page
QUALITY_BUCKET_S = 3600.0
QUALITY_SHOWN = 48  # newest quality buckets listed
LIVE_S = 900.0  # traffic figures older than this are not shown as live
SILENCE_DURATIONS = ("1h", "4h", "12h", "1d", "7d")
MAX_ID = 2**63 - 1


def _before(request: Request) -> int | None:
    """``before=``: the history page ends before this line id (none: the newest)."""
    if not request.query_params.get("before"):
        return None
    return want_int(request.query_params.get("before"), "before", 0, 1, MAX_ID)


def _monitoring_url(project: str, deployment: str) -> str:
    return f"{UI_PREFIX}/p/{quote(project, safe='')}/monitoring/{quote(deployment, safe='')}"


def _unless_missing(read: Callable[[], T]) -> T | None:
    """What ``read`` returns, or None when it is not there (no budget, no quota)."""
    try:
        return read()
    except NotFound:
        return None


def _helpers() -> dict[str, Any]:
    return {"money": money, "percent": percent}


# ---- monitoring -------------------------------------------------------------------------


@api.route("GET", _MON, permission=PROJECT_VIEWER, action="ui.monitoring.list")
def monitoring_page(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    ctx = app_context(request)
    live_since_ms = int((ctx.clock.now() - LIVE_S) * 1000)
    rows = []
    for summary in ctx.monitoring.overview(caller, project):
        statuses = [rule_status(r) for r in summary.rules]
        sample = summary.sample
        rows.append(
            {
                "name": summary.deployment.name,
                "drift": summary.drift,
                "worst": worst_feature(summary.drift),
                "rules": len(summary.rules),
                "firing": statuses.count("firing"),
                "pending": statuses.count("pending"),
                "sample": sample.values if sample and sample.time_ms >= live_since_ms else {},
            }
        )
    return render(request, "monitoring/list.html", section="monitoring", rows=rows, **_helpers())


@api.route("GET", _MON + "/{deployment}", permission=PROJECT_VIEWER, action="ui.monitoring.get")
def deployment_monitoring_page(
    project: str,
    deployment: str,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> Response:
    monitoring = app_context(request).monitoring
    before = _before(request)
    rules = monitoring.rules(caller, project, deployment)  # NotFound: no such deployment
    history = monitoring.drift_history(caller, project, deployment, DRIFT_HISTORY)
    latest = history[-1] if history else None
    features = feature_rows(latest)
    events = monitoring.latest_events(
        caller, project, deployment, before_id=before, limit=EVENTS_SHOWN
    )
    quality: list[dict[str, Any]] = []
    quality_error = ""
    try:
        quality = monitoring.quality(caller, project, deployment, bucket_s=QUALITY_BUCKET_S)
    except ModelyardError as exc:  # labels that no longer join: the rest still shows
        quality_error = exc.message
    samples = monitoring.samples(caller, project, deployment, minutes=LIVE_S / 60)
    return render(
        request,
        "monitoring/deployment.html",
        section="monitoring",
        deployment=deployment,
        latest=latest,
        features=features,
        charts=drift_charts(history, [f.name for f in features]),
        rules=[{"rule": r, "status": rule_status(r), "since": rule_since(r)} for r in rules],
        rule_text={r.id: r.rule for r in rules},
        events=events,
        older=events[-1].id if len(events) == EVENTS_SHOWN else None,
        silences=monitoring.silences(caller, project, deployment),
        durations=SILENCE_DURATIONS,
        quality=quality[-QUALITY_SHOWN:][::-1],
        quality_chart=quality_chart(quality),
        quality_error=quality_error,
        live=samples[-1].values if samples else {},
        finite=finite,
        **_helpers(),
    )


@api.route(
    "POST",
    _MON + "/{deployment}/silences",
    permission=PROJECT_EDITOR,
    action="ui.monitoring.silence",
)
async def add_silence(
    project: str,
    deployment: str,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> Response:
    """Silence one rule (or every rule) of a deployment for a while."""
    fields = await form_fields(request)
    duration = fields.get("duration", "")
    if duration not in SILENCE_DURATIONS:
        raise InvalidInput(f"duration: choose one of {', '.join(SILENCE_DURATIONS)}")
    rule = fields.get("rule", "").strip()
    set_audit_target(request, f"deployment:{deployment} silence:{rule or '*'} for {duration}")
    silence = partial(
        app_context(request).monitoring.silence,
        caller,
        project,
        deployment,
        duration=duration,
        rule=rule,
        comment=fields.get("comment", "")[:500],
    )
    await anyio.to_thread.run_sync(silence)
    return see_other(request, _monitoring_url(project, deployment))


@api.route(
    "POST",
    _MON + "/{deployment}/silences/{silence_id}/expire",
    permission=PROJECT_EDITOR,
    action="ui.monitoring.unsilence",
)
async def expire_silence(
    project: str,
    deployment: str,
    silence_id: str,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> Response:
    number = want_int(silence_id, "silence", 0, 1, MAX_ID)
    set_audit_target(request, f"deployment:{deployment} silence:{number}")
    expire = partial(app_context(request).monitoring.unsilence, caller, project, deployment, number)
    await anyio.to_thread.run_sync(expire)
    return see_other(request, _monitoring_url(project, deployment))


# ---- cost -------------------------------------------------------------------------------


@api.route("GET", _COST, permission=PROJECT_VIEWER, action="ui.cost.get")
def cost_page(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    ctx = app_context(request)
    period = cost_period(request.query_params.get("period"), ctx.clock.now())
    before = _before(request)
    report = ctx.cost.report(
        caller, project=project, by="deployment", since=period.since, until=period.until
    )
    over_time = ctx.cost.over_time(caller, project, since=period.since, until=period.until)
    tags = ctx.cost.tags(caller, project)
    budget = _unless_missing(lambda: ctx.budgets.show(caller, project).to_json())
    quota = _unless_missing(lambda: ctx.budgets.quota(caller, project).quota)
    events = ctx.budgets.latest_events(caller, project, before_id=before, limit=EVENTS_SHOWN)
    deployments = tags["deployments"]
    assert isinstance(deployments, dict)
    return render(
        request,
        "cost/project.html",
        section="cost",
        period=period,
        report=report,
        currency=report["currency"],
        chart=spend_chart(over_time, "Spend"),
        deployment_tags=deployments,
        project_tags=tags["tags"],
        budget=budget,
        state=budget_state(budget) if budget else None,
        quota=quota,
        usage=ctx.budgets.usage(project),
        events=events,
        older=events[-1].id if len(events) == EVENTS_SHOWN else None,
        periods=(("month", "This month"), ("7d", "Last 7 days"), ("30d", "Last 30 days")),
        **_helpers(),
    )


@api.route(
    "GET", _COST + "/deployments/{name}", permission=PROJECT_VIEWER, action="ui.cost.deployment"
)
def deployment_cost_page(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    ctx = app_context(request)
    period = cost_period(request.query_params.get("period"), ctx.clock.now())
    report = ctx.cost.deployment_report(
        caller, project, name, since=period.since, until=period.until
    )
    over_time = ctx.cost.over_time(
        caller, project, since=period.since, until=period.until, name=name
    )
    deployments = ctx.cost.tags(caller, project)["deployments"]
    assert isinstance(deployments, dict)
    return render(
        request,
        "cost/deployment.html",
        section="cost",
        name=name,
        period=period,
        report=report,
        currency=report["currency"],
        chart=spend_chart(over_time, "Cost"),
        requests_chart=requests_chart(over_time),
        tags=deployments.get(name, {}),
        periods=(("month", "This month"), ("7d", "Last 7 days"), ("30d", "Last 30 days")),
        **_helpers(),
    )
