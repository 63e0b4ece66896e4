"""Breadth-first traversal of the lineage graph over any neighbour function."""

from __future__ import annotations

from collections.abc import Callable, Collection

from modelyard.core.lineage import Direction, Edge, NodeKey

# Given a frontier and a direction (UP or DOWN), the edges that touch it that way.
Neighbours = Callable[[Collection[NodeKey], Direction], list[Edge]]
MAX_DEPTH = 50


def traverse(
    root: NodeKey, neighbours: Neighbours, direction: Direction, depth: int
) -> tuple[set[NodeKey], set[Edge]]:
    """Nodes and edges within ``depth`` hops of ``root``.

    ``BOTH`` is an ``UP`` walk plus a ``DOWN`` walk (never up-then-down), so the
    lineage of a model version shows its sources and its consumers, not its siblings.
    Cycles are fine: each node is expanded once per walk.
    """
    if direction is Direction.BOTH:
        up_nodes, up_edges = traverse(root, neighbours, Direction.UP, depth)
        down_nodes, down_edges = traverse(root, neighbours, Direction.DOWN, depth)
        return up_nodes | down_nodes, up_edges | down_edges
    seen = {root}
    edges: set[Edge] = set()
    frontier = {root}
    for _ in range(min(depth, MAX_DEPTH)):
        if not frontier:
            break
        found = neighbours(frontier, direction)
        edges.update(found)
        reached = {e.src if direction is Direction.UP else e.dst for e in found}
        frontier = reached - seen
        seen |= reached
    return seen, edges
