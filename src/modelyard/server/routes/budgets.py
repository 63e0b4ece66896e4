"""/api/v1/projects/{project}/budget and /quota, and /api/v1/budgets (issue 16)."""

from __future__ import annotations

from fastapi import Depends, Query, Request

from modelyard.auth import AUTHENTICATED, PROJECT_ADMIN, PROJECT_VIEWER, Principal
from modelyard.server._budget_schemas import (
    BudgetEventOut,
    BudgetIn,
    BudgetOut,
    BudgetSetOut,
    BudgetStatusOut,
    QuotaIn,
    QuotaOut,
)
from modelyard.server._context import app_context
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target

api = ApiRouter("/api/v1", tags=["budgets"])
_P = "/projects/{project}"


@api.route("PUT", _P + "/budget", permission=PROJECT_ADMIN, action="budget.set")
def set_budget(
    project: str, body: BudgetIn, request: Request, caller: Principal = Depends(current_principal)
) -> BudgetSetOut:
    """Create or replace the project's monthly budget (a webhook gets a new secret)."""
    set_audit_target(request, f"budget:{project} monthly:{body.monthly:g}")
    result = app_context(request).budgets.set_budget(
        caller,
        project,
        monthly=body.monthly,
        currency=body.currency,
        alert_at=body.alert_at,
        webhook=body.webhook,
        action=body.action,
    )
    return BudgetSetOut.of_set(result)


@api.route("GET", _P + "/budget", permission=PROJECT_VIEWER, action="budget.show")
def show_budget(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> BudgetStatusOut:
    """The budget with the month's spend, forecast and crossings, computed now."""
    return BudgetStatusOut.of_status(app_context(request).budgets.show(caller, project))


@api.route("DELETE", _P + "/budget", permission=PROJECT_ADMIN, action="budget.remove")
def remove_budget(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> dict[str, object]:
    set_audit_target(request, f"budget:{project}")
    app_context(request).budgets.remove(caller, project)
    return {"deleted": project}


@api.route("GET", _P + "/budget/history", permission=PROJECT_VIEWER, action="budget.history")
def budget_history(
    project: str,
    request: Request,
    after_id: int = Query(default=0, ge=0),
    limit: int = Query(default=200, ge=1, le=5000),
    kind: str | None = Query(default=None, max_length=32),
    caller: Principal = Depends(current_principal),
) -> list[BudgetEventOut]:
    events = app_context(request).budgets.history(
        caller, project, after_id=after_id, limit=limit, kind=kind
    )
    return [BudgetEventOut.of(e) for e in events]


@api.route("GET", "/budgets", permission=AUTHENTICATED, action="budget.list")
def list_budgets(
    request: Request, caller: Principal = Depends(current_principal)
) -> list[BudgetOut]:
    """Budgets of the projects the caller can see, as last evaluated."""
    return [BudgetOut.of(b) for b in app_context(request).budgets.budgets(caller)]


@api.route("PUT", _P + "/quota", permission=PROJECT_ADMIN, action="quota.set")
def set_quota(
    project: str, body: QuotaIn, request: Request, caller: Principal = Depends(current_principal)
) -> QuotaOut:
    """Create or replace the project's quota; lowering it stops no running replica."""
    limits = {k: v for k, v in body.model_dump().items() if v is not None}
    set_audit_target(request, f"quota:{project} " + " ".join(f"{k}={v}" for k, v in limits.items()))
    view = app_context(request).budgets.set_quota(
        caller,
        project,
        max_replicas=body.max_replicas,
        max_cpu=body.max_cpu,
        max_memory_gb=body.max_memory_gb,
        max_gpu=body.max_gpu,
    )
    return QuotaOut.of(view)


@api.route("GET", _P + "/quota", permission=PROJECT_VIEWER, action="quota.show")
def show_quota(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> QuotaOut:
    return QuotaOut.of(app_context(request).budgets.quota(caller, project))


@api.route("DELETE", _P + "/quota", permission=PROJECT_ADMIN, action="quota.remove")
def remove_quota(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> dict[str, object]:
    set_audit_target(request, f"quota:{project}")
    app_context(request).budgets.remove_quota(caller, project)
    return {"deleted": project}
