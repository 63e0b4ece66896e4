"""/ui/p/{project}/models...: registered models, their versions, aliases and alias history,
one version's signature and lineage, and moving an alias (editors)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.responses import Response

from modelyard.auth import PROJECT_EDITOR, PROJECT_VIEWER, Principal
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.core.lineage import Direction, EdgeType, LineageGraph, Node, NodeKind
from modelyard.core.models import ModelVersion
from modelyard.models.signature import ColumnSchema, Signature, TensorSchema
from modelyard.server._context import app_context
from modelyard.server._routing import current_principal, set_audit_target
from modelyard.server.routes._ui import form_fields, see_other, ui_router, want_int
from modelyard.ui import render

api = ui_router()

PAGE_SIZE = 50
HISTORY_SHOWN = 100
MAX_VERSION = 2**31 - 1  # versions are INTEGER columns: a larger number is no version


def _version_number(text: str, what: str) -> int:
    """A version number as typed into a URL or form (``3`` or ``v3``).

    Raises:
        InvalidInput: it is not a whole number in 1 .. 2**31 - 1.
    """
    text = text.strip().removeprefix("v")
    if not text.isdigit() or not 1 <= int(text) <= MAX_VERSION:
        raise InvalidInput(f"{what} must be a version number (1, 2, ...), got {text!r}")
    return int(text)


@api.route("GET", "/p/{project}/models", permission=PROJECT_VIEWER, action="ui.models.list")
def models_page(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    models = app_context(request).registry.list_models(caller, project)
    return render(request, "models/list.html", section="models", models=models)


@api.route("GET", "/p/{project}/models/{name}", permission=PROJECT_VIEWER, action="ui.model.get")
def model_page(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    page = want_int(request.query_params.get("page"), "page", 1, 1, 1_000_000)
    return _model_page(request, caller, project, name, page=page)


def _model_page(
    request: Request,
    caller: Principal,
    project: str,
    name: str,
    *,
    page: int = 1,
    error: str = "",
    alias: str = "production",
    status_code: int = 200,
) -> Response:
    """The model page; ``error`` (a refused alias move) is shown in ``.flash.bad``."""
    registry = app_context(request).registry
    model = registry.get_model(caller, project, name)
    versions = registry.versions_page(
        caller, project, name, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    history = registry.alias_history(caller, project, name)
    last_move = {change.alias: change for change in history}
    moved = request.query_params.get("moved")
    return render(
        request,
        "models/model.html",
        status_code,
        section="models",
        model=model,
        versions=versions,
        page=page,
        pages=max(1, -(-versions.total // PAGE_SIZE)),
        aliases=[(a, v, last_move.get(a)) for a, v in sorted(model.aliases.items())],
        history=list(reversed(history))[:HISTORY_SHOWN],
        history_total=len(history),
        # The success line names an alias only if the model has it (no echo of the URL).
        moved=moved if moved in model.aliases and not error else None,
        error=error,
        alias=alias,
    )


@api.route(
    "POST",
    "/p/{project}/models/{name}/aliases",
    permission=PROJECT_EDITOR,
    action="ui.model.alias.set",
)
async def set_alias(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    """Point an alias at a version; a bad alias or version re-renders the page with 400."""
    set_audit_target(request, f"model:{name}")
    fields = await form_fields(request)
    alias = fields.get("alias", "").strip()
    registry = app_context(request).registry
    await anyio.to_thread.run_sync(registry.get_model, caller, project, name)  # 404 first
    try:
        version = _version_number(fields.get("version", ""), "version")
        await anyio.to_thread.run_sync(registry.set_alias, caller, project, name, alias, version)
    except (InvalidInput, NotFound) as exc:
        refused = partial(_model_page, error=exc.message, alias=alias, status_code=400)
        return await anyio.to_thread.run_sync(refused, request, caller, project, name)
    target = f"/ui/p/{quote(project, safe='')}/models/{quote(name, safe='')}"
    return see_other(request, f"{target}?moved={quote(alias, safe='')}")


@api.route(
    "GET",
    "/p/{project}/models/{name}/versions/{version}",
    permission=PROJECT_VIEWER,
    action="ui.model.version.get",
)
def version_page(
    project: str,
    name: str,
    version: str,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> Response:
    try:
        number = _version_number(version, "version")
    except InvalidInput:
        raise NotFound(f"model {name!r} has no version {version!r}") from None
    ctx = app_context(request)
    found = ctx.registry.get_version(caller, project, name, number)
    graph = ctx.lineage.graph(caller, project, "model", f"{name}/{number}", Direction.BOTH, 2)
    related = _related(graph)
    serving: dict[str, int] = {}  # live deployments of the project: this version's traffic
    if related["deployments"]:
        for view in ctx.deployments.list_all(caller, project):
            serving[view.deployment.name] = sum(
                r.weight
                for r in view.deployment.revisions
                if (r.model_name, r.model_version) == (name, number)
            )
    deployments = [
        {"project": dep_project, "name": dep_name, "traffic": serving.get(dep_name)}
        for dep_project, dep_name in map(_deployment_of, related["deployments"])
        if dep_project == project
    ]
    return render(
        request,
        "models/version.html",
        section="models",
        v=found,
        signature=_signature(found),
        size=sum(f.size for f in found.files),
        runs=related["runs"],
        datasets=related["datasets"],
        deployments=deployments,
    )


def _related(graph: LineageGraph) -> dict[str, list[Node]]:
    """The version's source run(s), the datasets those runs read, the deployments it
    serves (or served): its neighbours in the lineage graph."""
    nodes = {n.key: n for n in graph.nodes}
    runs = [e.src for e in graph.edges if e.dst == graph.root and e.type is EdgeType.PRODUCED]
    datasets = {e.src for e in graph.edges if e.dst in runs and e.type is EdgeType.INPUT}
    deployments = [e.dst for e in graph.edges if e.src == graph.root and e.type is EdgeType.SERVES]
    return {
        "runs": [nodes[k] for k in runs if k in nodes],
        "datasets": [nodes[k] for k in sorted(datasets) if k in nodes],
        "deployments": [
            nodes[k] for k in deployments if k in nodes and k.kind is NodeKind.DEPLOYMENT
        ],
    }


def _deployment_of(node: Node) -> tuple[str, str]:
    """(project, name) of a deployment node, whose id is ``project/name``."""
    project, _, name = node.key.id.rpartition("/")
    return project, name


def _signature(version: ModelVersion) -> dict[str, Any] | None:
    """Inputs and outputs as tables: ``{"inputs": {...}, "outputs": {...} | None}``, each
    with ``columns`` (name, dtype) or a tensor's ``dtype`` and ``shape``; ``raw`` text
    when the stored signature cannot be read; None when there is none."""
    if not version.signature_json:
        return None
    try:
        parsed = Signature.from_json(json.loads(version.signature_json))
    except (ValueError, InvalidInput):
        return {"raw": version.signature_json}

    def table(schema: ColumnSchema | TensorSchema | None) -> dict[str, Any] | None:
        if schema is None:
            return None
        if isinstance(schema, TensorSchema):
            shape = ", ".join("?" if d == -1 else str(d) for d in schema.shape)
            return {"columns": None, "dtype": schema.dtype, "shape": f"({shape})"}
        return {"columns": [(c.name, c.dtype) for c in schema.columns]}

    return {"inputs": table(parsed.inputs), "outputs": table(parsed.outputs)}
