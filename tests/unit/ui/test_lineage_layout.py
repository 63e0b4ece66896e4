"""The lineage graph layout: every node placed once, no overlaps, edges left to right,
everything inside the drawing, the same answer for the same graph in any order."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.ui.lineage_layout import Layout, layout

Graph = tuple[list[tuple[str, int]], list[tuple[str, str]]]


@st.composite
def graphs(draw: st.DrawFn, acyclic: bool = False) -> Graph:
    """Up to 25 nodes with ranks 0-3 and up to 60 edges between them (any direction
    unless ``acyclic``, where edges go from a lower to a higher index)."""
    count = draw(st.integers(0, 25))
    nodes = [(f"n{i:02d}", draw(st.integers(0, 3))) for i in range(count)]
    edges: list[tuple[str, str]] = []
    if count:
        pairs = st.tuples(st.integers(0, count - 1), st.integers(0, count - 1))
        for a, b in draw(st.lists(pairs, max_size=60)):
            if acyclic and a >= b:
                continue
            edges.append((nodes[a][0], nodes[b][0]))
    return nodes, edges


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def _check(result: Layout, graph: Graph) -> None:
    nodes, edges = graph
    assert set(result.nodes) == {n for n, _ in nodes}
    boxes = [(p.x, p.y, p.width, p.height) for p in result.nodes.values()]
    for i, a in enumerate(boxes):
        assert min(a[2], a[3]) > 0
        assert min(a[0], a[1]) >= 0
        assert a[0] + a[2] <= result.width
        assert a[1] + a[3] <= result.height
        for b in boxes[i + 1 :]:
            assert not _overlap(a, b)
    assert {(e.src, e.dst) for e in result.edges} == set(edges)
    for edge in result.edges:
        src, dst = result.nodes[edge.src], result.nodes[edge.dst]
        if not edge.back:
            assert src.layer < dst.layer
            assert src.x + src.width <= dst.x
            xs = [p.x for p in edge.points()]
            assert xs == sorted(xs)  # never turns back
        for point in edge.points():
            assert 0 <= point.x <= result.width
            assert 0 <= point.y <= result.height
        assert edge.points()[0].x == src.x + src.width
        assert edge.points()[-1].x == dst.x


@settings(max_examples=150, deadline=None)
@given(graphs())
def test_any_graph_is_placed_without_overlaps_and_inside_the_drawing(graph: Graph) -> None:
    _check(layout(*graph), graph)


@settings(max_examples=150, deadline=None)
@given(graphs(acyclic=True))
def test_an_acyclic_graph_has_every_edge_left_to_right(graph: Graph) -> None:
    result = layout(*graph)
    _check(result, graph)
    assert not any(e.back for e in result.edges)


@settings(max_examples=80, deadline=None)
@given(graphs(), st.randoms(use_true_random=False))
def test_the_layout_is_the_same_for_the_same_graph_in_any_order(
    graph: Graph, rnd: random.Random
) -> None:
    nodes, edges = graph
    shuffled_nodes, shuffled_edges = list(nodes), list(edges) + list(edges)
    rnd.shuffle(shuffled_nodes)
    rnd.shuffle(shuffled_edges)
    assert layout(nodes, edges) == layout(nodes, edges)
    assert layout(shuffled_nodes, shuffled_edges) == layout(nodes, edges)


@settings(max_examples=100, deadline=None)
@given(graphs(acyclic=True))
def test_ranks_set_the_columns_when_edges_agree_with_them(graph: Graph) -> None:
    nodes, _ = graph
    rank = dict(nodes)
    agreeing = [(a, b) for a, b in graph[1] if rank[a] < rank[b]]
    result = layout(nodes, agreeing)
    for a in result.nodes.values():
        for b in result.nodes.values():
            if rank[a.id] < rank[b.id]:
                assert a.layer < b.layer


def test_data_run_model_deployment_go_left_to_right_in_one_row() -> None:
    result = layout(
        [("dep", 3), ("model", 2), ("run", 1), ("data", 0)],
        [("data", "run"), ("run", "model"), ("model", "dep")],
    )
    order = sorted(result.nodes.values(), key=lambda p: p.x)
    assert [p.id for p in order] == ["data", "run", "model", "dep"]
    assert len({p.y for p in order}) == 1
    assert result.crossings == 0


def test_crossings_are_undone_by_the_sweeps() -> None:
    # Two chains whose id order alone would cross: a0 -> b1 and a1 -> b0.
    result = layout([("a0", 0), ("a1", 0), ("b0", 1), ("b1", 1)], [("a0", "b1"), ("a1", "b0")])
    assert result.crossings == 0
    n = result.nodes
    assert (n["a0"].y < n["a1"].y) == (n["b1"].y < n["b0"].y)


def test_a_long_edge_bends_around_the_nodes_in_between() -> None:
    # data -> run -> data2 -> run2, and data -> run2 directly: it passes layers 1 and 2.
    result = layout(
        [("d1", 0), ("r1", 1), ("d2", 0), ("r2", 1)],
        [("d1", "r1"), ("r1", "d2"), ("d2", "r2"), ("d1", "r2")],
    )
    long = next(e for e in result.edges if (e.src, e.dst) == ("d1", "r2"))
    assert len(long.segments) == 5  # curve, straight through a dummy, twice, then a curve
    boxes = [p for p in result.nodes.values() if p.id in ("r1", "d2")]
    for point in (s.end for s in long.segments[:-1]):
        assert not any(
            b.x <= point.x <= b.x + b.width and b.y <= point.y <= b.y + b.height for b in boxes
        )


def test_a_cycle_gets_one_back_edge_and_an_empty_graph_is_small() -> None:
    result = layout([("a", 0), ("b", 0)], [("a", "b"), ("b", "a"), ("a", "zzz")])
    assert [(e.src, e.dst, e.back) for e in result.edges] == [
        ("a", "b", False),
        ("b", "a", True),
    ]
    empty = layout([], [])
    assert (empty.nodes, empty.edges) == ({}, ())
    assert min(empty.width, empty.height) > 0
