"""Lineage entities: node kinds, edge types, nodes, edges and a graph. No I/O.

The store persists them and the lineage package walks them; both take them from here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from modelyard.core.errors import InvalidInput


class NodeKind(enum.StrEnum):
    DATASET_VERSION = "dataset_version"
    RUN = "run"
    MODEL_VERSION = "model_version"
    DEPLOYMENT = "deployment"


class EdgeType(enum.StrEnum):
    INPUT = "input"  # dataset_version → run
    OUTPUT = "output"  # run → dataset_version
    PRODUCED = "produced"  # run → model_version
    SERVES = "serves"  # model_version → deployment


class Direction(enum.StrEnum):
    UP = "up"  # against the flow: inputs, sources
    DOWN = "down"  # with the flow: outputs, consumers
    BOTH = "both"


# Which node kinds each edge type may join, so a wrong edge never reaches the store.
EDGE_ENDS: dict[EdgeType, tuple[NodeKind, NodeKind]] = {
    EdgeType.INPUT: (NodeKind.DATASET_VERSION, NodeKind.RUN),
    EdgeType.OUTPUT: (NodeKind.RUN, NodeKind.DATASET_VERSION),
    EdgeType.PRODUCED: (NodeKind.RUN, NodeKind.MODEL_VERSION),
    EdgeType.SERVES: (NodeKind.MODEL_VERSION, NodeKind.DEPLOYMENT),
}


@dataclass(frozen=True, order=True)
class NodeKey:
    """A node's identity: its kind and its id in the store (run id, version row id …)."""

    kind: NodeKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"


@dataclass(frozen=True, order=True)
class Edge:
    """A directed, typed edge ``src → dst``."""

    src: NodeKey
    dst: NodeKey
    type: EdgeType

    def __post_init__(self) -> None:
        ends = EDGE_ENDS[self.type]
        if (self.src.kind, self.dst.kind) != ends:
            raise InvalidInput(
                f"a {self.type.value} edge joins {ends[0].value} → {ends[1].value}, "
                f"not {self.src.kind.value} → {self.dst.kind.value}"
            )


@dataclass(frozen=True)
class Node:
    """What the store knows about a node: a label for people and its project.

    ``project`` is None when the node's record is gone (``attrs['missing']``) or the
    kind has no project of its own yet.
    """

    key: NodeKey
    label: str
    project: str | None
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LineageGraph:
    """The part of the graph reached from ``root``."""

    root: NodeKey
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` / API form: nodes and edges by ``kind:id`` keys."""
        return {
            "root": str(self.root),
            "nodes": [
                {
                    "key": str(n.key),
                    "kind": n.key.kind.value,
                    "id": n.key.id,
                    "label": n.label,
                    "project": n.project,
                    "attrs": n.attrs,
                }
                for n in self.nodes
            ],
            "edges": [
                {"src": str(e.src), "dst": str(e.dst), "type": e.type.value} for e in self.edges
            ],
        }
