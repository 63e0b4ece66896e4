"""/api/v1/lineage/{kind}/{id}: the lineage graph around a dataset, run, model or deployment.

``kind`` is ``dataset`` (id ``name@vN``), ``run`` (a run id), ``model`` (``name/3``) or
``deployment``; names resolve in ``?project=`` (default ``default``). The project-scoped
form ``/api/v1/projects/{project}/lineage/{kind}/{id}`` is the same query.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Query, Request

from modelyard.auth import AUTHENTICATED, PROJECT_VIEWER, Principal
from modelyard.core.entities import DEFAULT_PROJECT
from modelyard.core.lineage import Direction
from modelyard.lineage.traversal import MAX_DEPTH
from modelyard.server._context import app_context
from modelyard.server._routing import ApiRouter, current_principal

api = ApiRouter("/api/v1", tags=["lineage"])

_DIRECTION = Query(Direction.BOTH, description="up (sources), down (consumers) or both")
_DEPTH = Query(10, ge=1, le=MAX_DEPTH, description="how many hops to follow")


@api.route("GET", "/lineage/{kind}/{ident:path}", permission=AUTHENTICATED, action="lineage.get")
def lineage(
    kind: str,
    ident: str,
    request: Request,
    project: str = Query(DEFAULT_PROJECT, min_length=1, max_length=64),
    direction: Direction = _DIRECTION,
    depth: int = _DEPTH,
    caller: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Nodes and edges around a node; nodes in projects the caller cannot view are left out."""
    graph = app_context(request).lineage.graph(caller, project, kind, ident, direction, depth)
    return graph.to_json()


@api.route(
    "GET",
    "/projects/{project}/lineage/{kind}/{ident:path}",
    permission=PROJECT_VIEWER,
    action="lineage.project.get",
)
def project_lineage(
    project: str,
    kind: str,
    ident: str,
    request: Request,
    direction: Direction = _DIRECTION,
    depth: int = _DEPTH,
    caller: Principal = Depends(current_principal),
) -> dict[str, Any]:
    graph = app_context(request).lineage.graph(caller, project, kind, ident, direction, depth)
    return graph.to_json()
