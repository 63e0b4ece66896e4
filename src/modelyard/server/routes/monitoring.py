"""/api/v1/projects/{project}/deployments/{name}/monitoring, drift, feedback, alerts and
silences; the project's alert actions and its Prometheus/Grafana export."""

from __future__ import annotations

from fastapi import Depends, Query, Request

from modelyard.auth import PROJECT_ADMIN, PROJECT_EDITOR, PROJECT_VIEWER, Principal
from modelyard.server._context import app_context
from modelyard.server._monitor_schemas import (
    ActionAdded,
    ActionIn,
    ActionOut,
    AlertEventOut,
    DriftOut,
    ExportOut,
    FeedbackOut,
    MonitorConfigIn,
    MonitorConfigOut,
    RuleOut,
    RulesAdded,
    RulesIn,
    SilenceIn,
    SilenceOut,
)
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target

api = ApiRouter("/api/v1/projects/{project}", tags=["monitoring"])
_DEP = "/deployments/{name}"
MAX_FEEDBACK_BYTES = 256 * 1024 * 1024


@api.route("GET", _DEP + "/monitoring", permission=PROJECT_VIEWER, action="monitor.show")
def show(
    project: str,
    name: str,
    request: Request,
    minutes: float = Query(default=15, gt=0, le=10080),
    caller: Principal = Depends(current_principal),
) -> dict[str, object]:
    return app_context(request).monitoring.show(caller, project, name, minutes)


@api.route("GET", _DEP + "/monitoring/config", permission=PROJECT_VIEWER, action="monitor.config")
def get_config(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> MonitorConfigOut:
    return MonitorConfigOut.of(app_context(request).monitoring.config(caller, project, name))


@api.route(
    "PATCH", _DEP + "/monitoring/config", permission=PROJECT_EDITOR, action="monitor.configure"
)
def set_config(
    project: str,
    name: str,
    body: MonitorConfigIn,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> MonitorConfigOut:
    set_audit_target(request, f"deployment:{name}")
    config = app_context(request).monitoring.configure(caller, project, name, body.changes())
    return MonitorConfigOut.of(config)


@api.route("GET", _DEP + "/drift", permission=PROJECT_VIEWER, action="monitor.drift")
def drift(
    project: str,
    name: str,
    request: Request,
    window_s: float | None = Query(default=None, ge=1, le=30 * 86400),
    stattest: str | None = Query(default=None, max_length=32),
    feature: list[str] | None = Query(default=None, max_length=1000),
    caller: Principal = Depends(current_principal),
) -> DriftOut:
    """Drift of the last ``window_s`` of logged traffic against the reference, now."""
    record = app_context(request).monitoring.drift(
        caller, project, name, window_s=window_s, stattest=stattest, features=feature
    )
    return DriftOut.of(record)


@api.route(
    "GET", _DEP + "/drift/history", permission=PROJECT_VIEWER, action="monitor.drift_history"
)
def drift_history(
    project: str,
    name: str,
    request: Request,
    limit: int = Query(default=100, ge=1, le=1000),
    caller: Principal = Depends(current_principal),
) -> list[DriftOut]:
    records = app_context(request).monitoring.drift_history(caller, project, name, limit)
    return [DriftOut.of(r) for r in records]


@api.route(
    "POST",
    _DEP + "/feedback",
    permission=PROJECT_EDITOR,
    action="monitor.feedback",
    status_code=201,
)
async def feedback(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> FeedbackOut:
    """Ground-truth labels: Parquet, CSV or JSON with ``request_id`` and ``label``."""
    set_audit_target(request, f"deployment:{name}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FEEDBACK_BYTES:
        from modelyard.core.errors import InvalidInput

        raise InvalidInput(f"a label file is at most {MAX_FEEDBACK_BYTES} bytes")
    data = await request.body()
    content_type = request.headers.get("content-type", "")
    from starlette.concurrency import run_in_threadpool

    batch, summary = await run_in_threadpool(
        app_context(request).monitoring.add_feedback, caller, project, name, data, content_type
    )
    return FeedbackOut(
        id=batch.id, rows=batch.rows, matched=batch.matched, quality=summary["quality"]
    )


@api.route("GET", _DEP + "/quality", permission=PROJECT_VIEWER, action="monitor.quality")
def quality(
    project: str,
    name: str,
    request: Request,
    bucket_s: float = Query(default=3600, ge=60, le=30 * 86400),
    caller: Principal = Depends(current_principal),
) -> list[dict[str, object]]:
    return app_context(request).monitoring.quality(caller, project, name, bucket_s=bucket_s)


@api.route("POST", _DEP + "/alerts", permission=PROJECT_EDITOR, action="alert.add", status_code=201)
def add_alerts(
    project: str,
    name: str,
    body: RulesIn,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> RulesAdded:
    set_audit_target(request, f"deployment:{name} rules:{'; '.join(body.rules)[:300]}")
    added = app_context(request).monitoring.add_rules(
        caller,
        project,
        name,
        body.rules,
        webhook=body.webhook,
        action=body.action,
        hysteresis=body.hysteresis,
    )
    return RulesAdded(
        rules=[RuleOut.of(r) for r in added.rules], webhook_secret=added.webhook_secret
    )


@api.route("GET", _DEP + "/alerts", permission=PROJECT_VIEWER, action="alert.list")
def list_alerts(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> list[RuleOut]:
    return [RuleOut.of(r) for r in app_context(request).monitoring.rules(caller, project, name)]


@api.route("DELETE", _DEP + "/alerts/{rule_id}", permission=PROJECT_EDITOR, action="alert.delete")
def delete_alert(
    project: str,
    name: str,
    rule_id: int,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> dict[str, object]:
    set_audit_target(request, f"deployment:{name} rule:{rule_id}")
    app_context(request).monitoring.delete_rule(caller, project, name, rule_id)
    return {"deleted": rule_id}


@api.route("GET", _DEP + "/alerts/history", permission=PROJECT_VIEWER, action="alert.history")
def alert_history(
    project: str,
    name: str,
    request: Request,
    after_id: int = Query(default=0, ge=0),
    limit: int = Query(default=200, ge=1, le=5000),
    kind: str | None = Query(default=None, max_length=32),
    caller: Principal = Depends(current_principal),
) -> list[AlertEventOut]:
    events = app_context(request).monitoring.history(
        caller, project, name, after_id=after_id, limit=limit, kind=kind
    )
    return [AlertEventOut.of(e) for e in events]


@api.route(
    "POST", _DEP + "/silences", permission=PROJECT_EDITOR, action="alert.silence", status_code=201
)
def add_silence(
    project: str,
    name: str,
    body: SilenceIn,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> SilenceOut:
    set_audit_target(request, f"deployment:{name} silence:{body.rule or '*'} for {body.duration}")
    record = app_context(request).monitoring.silence(
        caller, project, name, duration=body.duration, rule=body.rule, comment=body.comment
    )
    return SilenceOut.of(record)


@api.route("GET", _DEP + "/silences", permission=PROJECT_VIEWER, action="alert.silences")
def list_silences(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> list[SilenceOut]:
    return [
        SilenceOut.of(s) for s in app_context(request).monitoring.silences(caller, project, name)
    ]


@api.route(
    "DELETE", _DEP + "/silences/{silence_id}", permission=PROJECT_EDITOR, action="alert.unsilence"
)
def delete_silence(
    project: str,
    name: str,
    silence_id: int,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> dict[str, object]:
    set_audit_target(request, f"deployment:{name} silence:{silence_id}")
    app_context(request).monitoring.unsilence(caller, project, name, silence_id)
    return {"expired": silence_id}


@api.route(
    "POST", "/alert-actions", permission=PROJECT_ADMIN, action="alert.action_add", status_code=201
)
def add_action(
    project: str, body: ActionIn, request: Request, caller: Principal = Depends(current_principal)
) -> ActionAdded:
    set_audit_target(request, f"action:{body.name}")
    record = app_context(request).monitoring.add_action(
        caller,
        project,
        body.name,
        command=body.command,
        webhook=body.webhook,
        timeout_s=body.timeout_s,
    )
    out = ActionOut.of(record)
    secret = record.config.get("secret") if record.kind == "webhook" else None
    return ActionAdded(**out.model_dump(), webhook_secret=secret)


@api.route("GET", "/alert-actions", permission=PROJECT_VIEWER, action="alert.action_list")
def list_actions(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> list[ActionOut]:
    return [ActionOut.of(a) for a in app_context(request).monitoring.actions(caller, project)]


@api.route(
    "DELETE", "/alert-actions/{action}", permission=PROJECT_ADMIN, action="alert.action_delete"
)
def delete_action(
    project: str, action: str, request: Request, caller: Principal = Depends(current_principal)
) -> dict[str, object]:
    set_audit_target(request, f"action:{action}")
    app_context(request).monitoring.delete_action(caller, project, action)
    return {"deleted": action}


@api.route("GET", "/monitoring/export", permission=PROJECT_VIEWER, action="monitor.export")
def export(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> ExportOut:
    rules, dashboard = app_context(request).monitoring.export(caller, project)
    return ExportOut(prometheus_rules=rules, grafana_dashboard=dashboard)
