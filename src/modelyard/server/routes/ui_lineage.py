"""/ui/p/{project}/lineage: where to start, and the graph around one node as an SVG.

The graph URL names a node as the lineage API does (``dataset/credit@v2``, ``run/<id>``,
``model/churn/3``, ``deployment/churn-api``). The node must belong to ``{project}``
(another project's run is a 404 here, as if it did not exist); its neighbours may live
in other projects the caller can view. Big neighbourhoods are cut to the
:data:`MAX_NODES` nodes nearest the focus, and the page says so.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import Response

from modelyard.auth import PROJECT_VIEWER, Principal
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.lineage import Direction, Edge, LineageGraph, NodeKey, NodeKind
from modelyard.lineage.service import parse_kind
from modelyard.server._context import AppContext, app_context
from modelyard.server._routing import current_principal
from modelyard.server.routes._ui import ui_router, want_int
from modelyard.ui import render
from modelyard.ui.lineage_layout import layout
from modelyard.ui.lineage_nodes import RANKS, URL_KINDS, node_view

api = ui_router()

DEFAULT_DEPTH = 3
MAX_DEPTH = 6
MAX_NODES = 150
RECENT = 10
RECENT_EXPERIMENTS = 50
LABEL_CHARS = 26
RANKS_BY_URL = {URL_KINDS[k]: r for k, r in RANKS.items()}


def _direction(value: str | None) -> Direction:
    try:
        return Direction(value or Direction.BOTH.value)
    except ValueError:
        raise InvalidInput(f"direction must be up, down or both, got {value!r}") from None


def _require_here(ctx: AppContext, caller: Principal, project: str, kind: str, ident: str) -> None:
    """A 404 unless the node exists and belongs to ``project``."""
    node_kind = parse_kind(kind)
    if node_kind is NodeKind.DEPLOYMENT:
        if not ident or "/" in ident:
            raise NotFound(f"no deployment named {ident!r} in project {project!r}")
        ctx.deployments.get(caller, project, ident)
        return
    _, owner = ctx.lineage.resolve(project, kind, ident)
    if owner != project:
        raise NotFound(f"{URL_KINDS[node_kind]} {ident!r} does not exist in project {project!r}")


def _nearest(graph: LineageGraph, limit: int) -> tuple[set[NodeKey], int]:
    """The ``limit`` nodes fewest hops from the root (ties by key), and how many were cut."""
    present = {n.key for n in graph.nodes}
    around: dict[NodeKey, list[NodeKey]] = {k: [] for k in present}
    for e in graph.edges:
        around[e.src].append(e.dst)
        around[e.dst].append(e.src)
    seen = {graph.root}
    queue = deque([graph.root])
    order: list[NodeKey] = []
    while queue and len(order) < limit:
        key = queue.popleft()
        order.append(key)
        for other in sorted(around.get(key, ())):
            if other not in seen:
                seen.add(other)
                queue.append(other)
    return set(order), len(present) - len(order)


def _truncate(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def graph_view(graph: LineageGraph) -> dict[str, Any]:
    """Nodes with their boxes, edges with their curves, for ``lineage/graph.html``."""
    kept, cut = _nearest(graph, MAX_NODES)
    nodes = [n for n in graph.nodes if n.key in kept]
    edges: list[Edge] = [e for e in graph.edges if e.src in kept and e.dst in kept]
    placed = layout(
        [(str(n.key), RANKS[n.key.kind]) for n in nodes], [(str(e.src), str(e.dst)) for e in edges]
    )
    views = {str(n.key): node_view(n) for n in nodes}
    drawn = [
        {"view": views[key], "box": box, "short": _truncate(views[key].label)}
        for key, box in placed.nodes.items()
    ]
    types = {(str(e.src), str(e.dst)): e.type.value for e in edges}
    return {
        "layout": placed,
        "drawn": drawn,
        "edges": [{"path": p, "type": types[(p.src, p.dst)]} for p in placed.edges],
        "table": sorted(views.values(), key=lambda v: (RANKS_BY_URL[v.kind], v.label, v.key)),
        "edge_rows": [(views[str(e.src)], e.type.value, views[str(e.dst)]) for e in edges],
        "focus": str(graph.root),
        "cut": cut,
    }


@api.route("GET", "/p/{project}/lineage", permission=PROJECT_VIEWER, action="ui.lineage.home")
def lineage_home(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    ctx = app_context(request)
    datasets = ctx.data.dataset_summaries(caller, project, limit=RECENT, recent=True)
    experiments = ctx.tracking.list_experiments(
        caller, project, max_results=RECENT_EXPERIMENTS
    ).items
    runs = (
        ctx.tracking.search_runs(
            caller,
            [e.id for e in experiments],
            order_by=["attributes.start_time DESC"],
            max_results=RECENT,
        ).items
        if experiments
        else []
    )
    models = sorted(
        ctx.registry.list_models(caller, project), key=lambda m: (-m.updated_at_ms, m.name)
    )[:RECENT]
    deployments = sorted(
        ctx.deployments.list_all(caller, project),
        key=lambda d: (-d.deployment.updated_at_ms, d.deployment.name),
    )[:RECENT]
    return render(
        request,
        "lineage/home.html",
        section="lineage",
        datasets=datasets,
        runs=runs,
        models=[m for m in models if m.latest_version is not None],
        deployments=[d.deployment for d in deployments],
    )


@api.route(
    "GET",
    "/p/{project}/lineage/{kind}/{ident:path}",
    permission=PROJECT_VIEWER,
    action="ui.lineage.graph",
)
def lineage_graph(
    project: str,
    kind: str,
    ident: str,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> Response:
    depth = want_int(request.query_params.get("depth"), "depth", DEFAULT_DEPTH, 1, MAX_DEPTH)
    direction = _direction(request.query_params.get("direction"))
    ctx = app_context(request)
    _require_here(ctx, caller, project, kind, ident)
    graph = ctx.lineage.graph(caller, project, kind, ident, direction, depth)
    focus = next(n for n in graph.nodes if n.key == graph.root)
    return render(
        request,
        "lineage/graph.html",
        section="lineage",
        focus_node=node_view(focus),
        depth=depth,
        max_depth=MAX_DEPTH,
        direction=direction.value,
        max_nodes=MAX_NODES,
        **graph_view(graph),
    )
