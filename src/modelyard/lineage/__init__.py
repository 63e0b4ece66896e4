"""The lineage graph: typed nodes and edges from data to deployments, and its traversal.

Edges point the way data flows::

    dataset_version ─input─► run ─output─► dataset_version
                              └─produced─► model_version ─serves─► deployment

``up`` walks against the flow (what made this?), ``down`` with it (what did this make?).
"""

from __future__ import annotations

from modelyard.core.lineage import (
    Direction,
    Edge,
    EdgeType,
    LineageGraph,
    Node,
    NodeKey,
    NodeKind,
)
from modelyard.lineage.traversal import traverse

__all__ = [
    "Direction",
    "Edge",
    "EdgeType",
    "LineageGraph",
    "Node",
    "NodeKey",
    "NodeKind",
    "traverse",
]
