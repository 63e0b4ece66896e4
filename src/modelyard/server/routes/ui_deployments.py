"""/ui/p/{project}/deployments...: deployments, one deployment with its live section
(replicas, traffic, rollout, events; refreshed by htmx every 2 s), rollback and promote.

Live figures are what ``modelyard monitor show`` prints: the newest sample the monitor
loop took of the gateway's counters (req/s, p50/p99, error rate). Replicas, traffic
split and rollout come from the deployment's desired state and replica records; the
desired replica count is the controller's newest ``scale`` event per revision.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.responses import Response

from modelyard.auth import PROJECT_EDITOR, PROJECT_VIEWER, Principal
from modelyard.core.deployments import Deployment, DeploymentEvent, Replica
from modelyard.core.errors import Conflict, InvalidInput
from modelyard.core.monitoring import MonitorSample
from modelyard.deploy.service import DeploymentView
from modelyard.server._context import app_context
from modelyard.server._routing import current_principal, set_audit_target
from modelyard.server.routes._ui import see_other, ui_router
from modelyard.ui import render

api = ui_router()

EVENTS_SHOWN = 20
LIVE_MINUTES = 2.0  # a sample older than this is not "live" (the loop samples every 10 s)
CHART_MINUTES = 60.0
DONE = {
    "rollback": "Rollback requested: the controller moves traffic back now.",
    "promote": "Promoted: the new revision takes all traffic.",
}


def ready_count(replicas: tuple[Replica, ...]) -> int:
    """Replicas that take traffic now (a prewarmed standby does not)."""
    return sum(1 for r in replicas if r.state == "ready" and not r.standby)


def desired_count(dep: Deployment, scale_events: list[DeploymentEvent]) -> int | None:
    """The controller's newest desired count per serving revision, summed; None before
    it decided anything (no ``scale`` event of a serving revision yet)."""
    newest: dict[int, int] = {}
    for event in scale_events:  # newest first
        desired = event.data.get("desired")
        if event.revision is not None and event.revision not in newest and desired is not None:
            newest[event.revision] = int(desired)
    serving = [r.number for r in dep.revisions if r.state in ("pending", "ready")]
    known = [newest[n] for n in serving if n in newest]
    return sum(known) if known else None


def rollout_progress(dep: Deployment) -> dict[str, Any] | None:
    """The rollout as the page shows it: phase, step, percent of traffic moved, checks."""
    ro = dep.rollout
    if ro is None:
        return None
    if ro.strategy == "canary":
        percent = ro.steps[ro.step_index] if ro.step_index >= 0 else 0
        step = f"{ro.step_index + 1} of {len(ro.steps)}" if ro.step_index >= 0 else "waiting"
    else:
        percent = round(100 * ro.replaced / ro.total) if ro.total else 0
        step = f"{ro.replaced} of {ro.total} replicas" if ro.total else "waiting"
    if ro.phase == "done":
        percent = 100
    return {
        "rollout": ro,
        "percent": percent,
        "step": step,
        "target": dep.revision(ro.target),
        "stable": dep.revision(ro.stable),
        "can_promote": ro.active and ro.strategy == "canary",
    }


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _live_context(
    request: Request,
    caller: Principal,
    project: str,
    name: str,
    *,
    flash: str = "",
    error: str = "",
) -> dict[str, Any]:
    """Everything the live section shows, read fresh (with a line on what was just done,
    or why it was refused)."""
    ctx = app_context(request)
    view = ctx.deployments.get(caller, project, name)
    dep = view.deployment
    events = ctx.deployments.recent_events(caller, project, name, limit=EVENTS_SHOWN)
    scale = ctx.deployments.recent_events(caller, project, name, limit=50, kind="scale")
    samples = ctx.monitoring.samples(caller, project, name, minutes=LIVE_MINUTES)
    latest = samples[-1] if samples else None
    revisions = {r.number: r for r in dep.revisions}
    return {
        "dep": dep,
        "view": view,
        "ready": ready_count(view.replicas),
        "desired": desired_count(dep, scale),
        "sample": latest,
        "live": {k: _finite(v) for k, v in latest.values.items()} if latest else {},
        "split": [(revisions[n], w) for n, w in sorted(dep.weights.items()) if n in revisions],
        "shadows": [(revisions[n], p) for n, p in sorted(dep.shadows.items()) if n in revisions],
        "progress": rollout_progress(dep),
        "events": events,
        "flash": flash,
        "error": error,
    }


@api.route(
    "GET", "/p/{project}/deployments", permission=PROJECT_VIEWER, action="ui.deployments.list"
)
def deployments_page(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    ctx = app_context(request)
    rows = []
    for view in ctx.deployments.list_all(caller, project):
        dep = view.deployment
        scale = ctx.deployments.recent_events(caller, project, dep.name, limit=50, kind="scale")
        rows.append(
            {
                "view": view,
                "stable": dep.revision(dep.stable_revision or 0),
                "ready": ready_count(view.replicas),
                "desired": desired_count(dep, scale),
            }
        )
    return render(request, "deployments/list.html", section="deployments", rows=rows)


@api.route(
    "GET", "/p/{project}/deployments/{name}", permission=PROJECT_VIEWER, action="ui.deployment.get"
)
def deployment_page(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    return _page(request, caller, project, name)


def _page(
    request: Request,
    caller: Principal,
    project: str,
    name: str,
    *,
    flash: str = "",
    error: str = "",
    status_code: int = 200,
) -> Response:
    done = DONE.get(request.query_params.get("done") or "", "")
    live = _live_context(request, caller, project, name, flash=flash or done, error=error)
    samples = app_context(request).monitoring.samples(caller, project, name, CHART_MINUTES)
    return render(
        request,
        "deployments/detail.html",
        status_code,
        section="deployments",
        charts=_charts(samples) if samples else [],
        **live,
    )


def _charts(samples: list[MonitorSample]) -> list[tuple[str, dict[str, Any]]]:
    """uPlot specs over the last hour of samples: traffic, latency, errors."""
    xs = [s.time_ms / 1000.0 for s in samples]

    def spec(title: str, *lines: tuple[str, str, float]) -> dict[str, Any]:
        series = []
        for label, key, scale in lines:
            ys = [_finite(s.values.get(key)) for s in samples]
            series.append(
                {"label": label, "x": xs, "y": [None if y is None else y * scale for y in ys]}
            )
        return {"title": title, "x_label": "time", "time": True, "series": series}

    return [
        ("chart-rps", spec("Requests per second", ("req/s", "rps", 1.0))),
        ("chart-latency", spec("Latency (ms)", ("p50", "p50_ms", 1.0), ("p99", "p99_ms", 1.0))),
        ("chart-errors", spec("Error rate (%)", ("errors", "error_rate", 100.0))),
    ]


@api.route(
    "GET",
    "/p/{project}/deployments/{name}/live",
    permission=PROJECT_VIEWER,
    action="ui.deployment.live",
)
def live_fragment(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    """The live section alone, for htmx's polling."""
    return render(
        request, "deployments/_live.html", **_live_context(request, caller, project, name)
    )


@api.route(
    "POST",
    "/p/{project}/deployments/{name}/rollback",
    permission=PROJECT_EDITOR,
    action="ui.deployment.rollback",
)
async def rollback(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    """Back to the previous stable revision (or stop the rollout in progress)."""
    service = app_context(request).deployments
    return await _act(request, caller, project, name, "rollback", service.rollback)


@api.route(
    "POST",
    "/p/{project}/deployments/{name}/promote",
    permission=PROJECT_EDITOR,
    action="ui.deployment.promote",
)
async def promote(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    """End a canary rollout early: its revision takes 100% of traffic.

    The deployment service has no promote of its own; this sets the traffic split to
    100% on the rollout's target version (``set_traffic``), which also ends the rollout.
    """
    service = app_context(request).deployments

    def promote_now(caller: Principal, project: str, name: str) -> DeploymentView:
        dep = service.get(caller, project, name).deployment
        ro = dep.rollout
        if ro is None or not ro.active or ro.strategy != "canary":
            raise Conflict(f"deployment {name!r} has no canary rollout in progress to promote")
        target = dep.revision(ro.target)
        if target is None or target.state != "ready":
            raise Conflict(
                f"revision {ro.target} of {name!r} has no ready replica yet: wait for the "
                "canary to start before promoting it"
            )
        return service.set_traffic(caller, project, name, {target.model_version: 100})

    return await _act(request, caller, project, name, "promote", promote_now)


async def _act(
    request: Request,
    caller: Principal,
    project: str,
    name: str,
    what: str,
    action: Callable[[Principal, str, str], DeploymentView],
) -> Response:
    """Run a deployment action; answer htmx with the fresh live section (the service's
    refusal in ``.flash.bad``, with 409 or 400), a plain form with the page."""
    set_audit_target(request, f"deployment:{name}")
    htmx = request.headers.get("hx-request") == "true"
    try:
        await anyio.to_thread.run_sync(action, caller, project, name)
    except (Conflict, InvalidInput) as exc:
        status = 409 if isinstance(exc, Conflict) else 400
        answer = _fragment if htmx else _page
        refused = partial(answer, error=exc.message, status_code=status)
        return await anyio.to_thread.run_sync(refused, request, caller, project, name)
    if htmx:
        done = partial(_fragment, flash=DONE[what])
        return await anyio.to_thread.run_sync(done, request, caller, project, name)
    page = f"/ui/p/{quote(project, safe='')}/deployments/{quote(name, safe='')}"
    return see_other(request, f"{page}?done={what}")


def _fragment(
    request: Request,
    caller: Principal,
    project: str,
    name: str,
    *,
    flash: str = "",
    error: str = "",
    status_code: int = 200,
) -> Response:
    context = _live_context(request, caller, project, name, flash=flash, error=error)
    return render(request, "deployments/_live.html", status_code, **context)
