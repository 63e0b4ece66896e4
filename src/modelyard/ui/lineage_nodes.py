"""Lineage nodes as the web UI names them: their page, their graph URL, a short caption.

The graph URL uses the kinds and ids of the lineage API (``dataset/credit@v2``,
``run/<id>``, ``model/churn/3``, ``deployment/churn-api``). URLs are built from quoted
path segments; the templates escape them like any other value.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from modelyard.lineage import Node, NodeKind

# The column each kind starts in, left to right: data -> run -> model -> deployment.
RANKS = {
    NodeKind.DATASET_VERSION: 0,
    NodeKind.RUN: 1,
    NodeKind.MODEL_VERSION: 2,
    NodeKind.DEPLOYMENT: 3,
}
URL_KINDS = {
    NodeKind.DATASET_VERSION: "dataset",
    NodeKind.RUN: "run",
    NodeKind.MODEL_VERSION: "model",
    NodeKind.DEPLOYMENT: "deployment",
}


@dataclass(frozen=True)
class NodeView:
    """A node for a page: ``kind``/``ident`` as in the lineage URL (``ident`` None when
    its record is gone), its own page and graph (None when it has none)."""

    key: str
    kind: str
    ident: str | None
    label: str
    project: str | None
    page: str | None
    graph: str | None
    detail: str
    missing: bool


def _q(value: object) -> str:
    return quote(str(value), safe="")


def node_view(node: Node) -> NodeView:
    kind = node.key.kind
    attrs = node.attrs
    project = node.project
    ident: str | None = None
    page: str | None = None
    detail = ""
    base = f"/ui/p/{_q(project)}"
    if not attrs.get("missing") and project is not None:
        if kind is NodeKind.DATASET_VERSION and "dataset" in attrs and "version" in attrs:
            ident = f"{attrs['dataset']}@v{attrs['version']}"
            page = f"{base}/datasets/{_q(attrs['dataset'])}/versions/v{_q(attrs['version'])}"
            detail = f"{attrs.get('files', '?')} files"
        elif kind is NodeKind.RUN:
            ident = node.key.id
            page = f"{base}/runs/{_q(ident)}"
            detail = f"{attrs.get('experiment', '')} · {attrs.get('status', '')}".strip(" ·")
        elif kind is NodeKind.MODEL_VERSION and "model" in attrs and "version" in attrs:
            ident = f"{attrs['model']}/{attrs['version']}"
            page = f"{base}/models/{_q(attrs['model'])}/versions/{_q(attrs['version'])}"
            detail = str(attrs.get("flavor", ""))
        elif kind is NodeKind.DEPLOYMENT:
            ident = node.key.id.rpartition("/")[2]
            page = f"{base}/deployments/{_q(ident)}"
    graph = None
    if ident is not None:
        tail = (
            f"{_q(attrs['model'])}/{_q(attrs['version'])}"
            if kind is NodeKind.MODEL_VERSION
            else _q(ident)
        )
        graph = f"{base}/lineage/{URL_KINDS[kind]}/{tail}"
    return NodeView(
        key=str(node.key),
        kind=URL_KINDS[kind],
        ident=ident,
        label=node.label,
        project=project,
        page=page,
        graph=graph,
        detail=detail,
        missing=bool(attrs.get("missing")),
    )
