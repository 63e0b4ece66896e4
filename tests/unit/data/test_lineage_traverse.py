"""Traversal of the lineage graph over an in-memory edge list."""

from __future__ import annotations

from collections.abc import Collection

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.core.errors import InvalidInput
from modelyard.lineage import Direction, Edge, EdgeType, NodeKey, NodeKind, traverse
from modelyard.lineage.traversal import Neighbours

D = [NodeKey(NodeKind.DATASET_VERSION, str(i)) for i in range(6)]
R = [NodeKey(NodeKind.RUN, f"r{i}") for i in range(6)]
M = [NodeKey(NodeKind.MODEL_VERSION, str(i)) for i in range(3)]


def _neighbours(edges: list[Edge]) -> Neighbours:
    def find(frontier: Collection[NodeKey], direction: Direction) -> list[Edge]:
        end = "dst" if direction is Direction.UP else "src"
        return [e for e in edges if getattr(e, end) in frontier]

    return find


CHAIN = [
    Edge(D[0], R[0], EdgeType.INPUT),
    Edge(R[0], D[1], EdgeType.OUTPUT),
    Edge(D[1], R[1], EdgeType.INPUT),
    Edge(R[1], M[0], EdgeType.PRODUCED),
    Edge(R[1], M[1], EdgeType.PRODUCED),
]


def test_up_down_both_and_depth() -> None:
    find = _neighbours(CHAIN)
    up, _ = traverse(M[0], find, Direction.UP, 10)
    assert up == {M[0], R[1], D[1], R[0], D[0]}  # not the sibling M[1]
    down, down_edges = traverse(D[1], find, Direction.DOWN, 10)
    assert down == {D[1], R[1], M[0], M[1]}
    assert len(down_edges) == 3
    shallow, _ = traverse(M[0], find, Direction.UP, 2)
    assert shallow == {M[0], R[1], D[1]}
    both, _ = traverse(R[1], find, Direction.BOTH, 10)
    assert both == {R[1], D[1], R[0], D[0], M[0], M[1]}


def test_edges_refuse_wrong_node_kinds() -> None:
    with pytest.raises(InvalidInput, match="produced edge joins run"):
        Edge(D[0], M[0], EdgeType.PRODUCED)


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.booleans()), max_size=30))
def test_cycles_terminate_and_every_edge_joins_reached_nodes(
    pairs: list[tuple[int, int, bool]],
) -> None:
    edges = [
        Edge(D[a], R[b], EdgeType.INPUT) if forward else Edge(R[b], D[a], EdgeType.OUTPUT)
        for a, b, forward in pairs
    ]
    nodes, found = traverse(D[0], _neighbours(edges), Direction.BOTH, 50)
    assert D[0] in nodes
    assert all(e.src in nodes and e.dst in nodes for e in found)
