"""/api/v1/audit: the append-only record of every mutating call."""

from __future__ import annotations

from fastapi import Depends, Query, Request

from modelyard.auth import AUTHENTICATED, Principal
from modelyard.server._context import app_context
from modelyard.server._routing import ApiRouter, current_principal
from modelyard.server._schemas import AuditOut

api = ApiRouter("/api/v1", tags=["audit"])


@api.route("GET", "/audit", permission=AUTHENTICATED, action="audit.list")
def list_audit(
    request: Request,
    project: str | None = Query(None, max_length=63),
    actor: str | None = Query(None, max_length=128),
    action: str | None = Query(None, max_length=128),
    since: float | None = Query(None, description="epoch seconds"),
    limit: int = Query(100, ge=1, le=10_000),
    caller: Principal = Depends(current_principal),
) -> list[AuditOut]:
    records = app_context(request).auth.list_audit(
        caller, project=project, actor=actor, action=action, since=since, limit=limit
    )
    return [AuditOut.of(r) for r in records]
