"""Where the lineage graph's nodes go: layers left to right, few crossings. No I/O, no HTML.

A Sugiyama-style layout in four steps, deterministic for a given set of nodes and edges
(whatever order they come in):

1. cycles are broken by a depth-first search in id order; the edges it finds going back
   (``back``) are drawn right to left and take no part in layering;
2. each node's layer is the longest path to it, but never less than its ``rank`` (the
   lineage page ranks data 0, runs 1, models 2, deployments 3, so they line up in
   columns); empty layers are dropped;
3. an edge spanning several layers gets a dummy point per layer in between, and the order
   within each layer is improved by barycenter sweeps (down, then up), keeping the order
   with the fewest crossings seen;
4. coordinates: fixed-size boxes in columns, each column centred vertically; edges as
   cubic curves through their dummy points, all inside ``width`` x ``height``.

The template draws the result (``lineage/graph.html``); nothing here builds markup.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

NODE_WIDTH = 190.0
NODE_HEIGHT = 38.0
GAP_X = 90.0
GAP_Y = 18.0
DUMMY_HEIGHT = 10.0
MARGIN = 24.0
SWEEPS = 8


@dataclass(frozen=True)
class Point:
    x: float
    y: float


@dataclass(frozen=True)
class Segment:
    """One cubic Bézier piece: control points ``c1``, ``c2``, then its end point."""

    c1: Point
    c2: Point
    end: Point


@dataclass(frozen=True)
class PlacedNode:
    id: str
    layer: int
    order: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class PlacedEdge:
    """An edge as a path: ``start``, then cubic ``segments``; ``back`` if it closes a cycle
    (it runs right to left, below its ends)."""

    src: str
    dst: str
    start: Point
    segments: tuple[Segment, ...]
    back: bool = False

    def points(self) -> list[Point]:
        """Every point of the path, control points included."""
        out = [self.start]
        for s in self.segments:
            out += [s.c1, s.c2, s.end]
        return out


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    nodes: dict[str, PlacedNode]
    edges: tuple[PlacedEdge, ...]
    crossings: int


def layout(nodes: Iterable[tuple[str, int]], edges: Iterable[tuple[str, str]]) -> Layout:
    """Place ``nodes`` (``(id, rank)`` pairs) and route ``edges`` (``(src, dst)`` ids).

    Edges naming an unknown node, and repeated nodes or edges, are ignored (the first
    rank given for an id counts). A self-loop is drawn as a back edge.
    """
    ranks: dict[str, int] = {}
    for node_id, rank in sorted(nodes, key=lambda n: n[0]):
        ranks.setdefault(node_id, max(0, rank))
    ids = sorted(ranks)
    pairs = sorted({(s, d) for s, d in edges if s in ranks and d in ranks})
    back = _back_edges(ids, pairs)
    forward = [p for p in pairs if p not in back]
    layer_of = _layers(ids, ranks, forward)
    layers, chains = _with_dummies(ids, layer_of, forward)
    adjacent = _adjacent_pairs(chains)
    layers, crossings = _order(layers, adjacent)
    placed, slots, width, height = _coordinates(layers, ranks)
    routed = [_route(chains[p], slots) for p in forward]
    routed += [_route_back(p, placed, height) for p in sorted(back)]
    routed.sort(key=lambda e: (e.src, e.dst))
    return Layout(width, height, placed, tuple(routed), crossings)


def _back_edges(ids: list[str], pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Edges to a node still on the depth-first stack (iterative, ids in sorted order)."""
    successors: dict[str, list[str]] = {i: [] for i in ids}
    for s, d in pairs:
        successors[s].append(d)
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    back: set[tuple[str, str]] = set()
    for root in ids:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(successors[root]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(successors[child])))
    return back


def _layers(
    ids: list[str], ranks: dict[str, int], forward: list[tuple[str, str]]
) -> dict[str, int]:
    """Longest-path layers at least each node's rank, empty layers squeezed out."""
    predecessors: dict[str, list[str]] = {i: [] for i in ids}
    successors: dict[str, list[str]] = {i: [] for i in ids}
    for s, d in forward:
        predecessors[d].append(s)
        successors[s].append(d)
    waiting = {i: len(predecessors[i]) for i in ids}
    ready = [i for i in ids if waiting[i] == 0]
    layer: dict[str, int] = {}
    while ready:
        node = ready.pop()
        layer[node] = max([ranks[node]] + [layer[p] + 1 for p in predecessors[node]])
        for child in successors[node]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    used = {number: index for index, number in enumerate(sorted(set(layer.values())))}
    return {i: used[layer[i]] for i in ids}


# Internal node handles: real nodes are their id; dummies are (src, dst, layer).
Handle = str | tuple[str, str, int]


def _with_dummies(
    ids: list[str], layer_of: dict[str, int], forward: list[tuple[str, str]]
) -> tuple[list[list[Handle]], dict[tuple[str, str], list[Handle]]]:
    """Layers holding the real nodes and one dummy per edge per layer it passes through."""
    count = max(layer_of.values(), default=-1) + 1
    layers: list[list[Handle]] = [[] for _ in range(count)]
    for i in ids:
        layers[layer_of[i]].append(i)
    chains: dict[tuple[str, str], list[Handle]] = {}
    for s, d in forward:
        chain: list[Handle] = [s]
        for middle in range(layer_of[s] + 1, layer_of[d]):
            dummy = (s, d, middle)
            layers[middle].append(dummy)
            chain.append(dummy)
        chains[(s, d)] = [*chain, d]
    return layers, chains


def _adjacent_pairs(chains: dict[tuple[str, str], list[Handle]]) -> list[tuple[Handle, Handle]]:
    return [(a, b) for chain in chains.values() for a, b in pairwise(chain)]


def _order(
    layers: list[list[Handle]], pairs: list[tuple[Handle, Handle]]
) -> tuple[list[list[Handle]], int]:
    """Barycenter sweeps; the ordering with the fewest crossings wins (the first such)."""
    ups: dict[Handle, list[Handle]] = {}
    downs: dict[Handle, list[Handle]] = {}
    for a, b in pairs:
        downs.setdefault(a, []).append(b)
        ups.setdefault(b, []).append(a)
    current = [list(layer) for layer in layers]
    best, best_crossings = [list(layer) for layer in current], _crossings(current, downs)
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        indices = range(1, len(current)) if downward else range(len(current) - 2, -1, -1)
        for index in indices:
            fixed = current[index - 1] if downward else current[index + 1]
            position = {h: p for p, h in enumerate(fixed)}
            neighbours = ups if downward else downs
            current[index] = _by_barycenter(current[index], neighbours, position)
        found = _crossings(current, downs)
        if found < best_crossings:
            best, best_crossings = [list(layer) for layer in current], found
        if best_crossings == 0:
            break
    return best, best_crossings


def _by_barycenter(
    layer: list[Handle], neighbours: dict[Handle, list[Handle]], position: dict[Handle, int]
) -> list[Handle]:
    """The layer sorted by the mean position of each node's neighbours in the fixed layer;
    a node without any keeps its own place (stable sort: ties keep their order)."""
    keys: list[tuple[float, int]] = []
    for place, handle in enumerate(layer):
        found = [position[n] for n in neighbours.get(handle, ()) if n in position]
        keys.append((sum(found) / len(found) if found else float(place), place))
    ordered = sorted(range(len(layer)), key=lambda i: keys[i])
    return [layer[i] for i in ordered]


def _crossings(layers: list[list[Handle]], downs: dict[Handle, list[Handle]]) -> int:
    """Edge crossings between adjacent layers, by counting inversions."""
    total = 0
    for upper, lower in pairwise(layers):
        below = {h: p for p, h in enumerate(lower)}
        ends = sorted(
            (p, below[d]) for p, h in enumerate(upper) for d in downs.get(h, ()) if d in below
        )
        seen: list[int] = []
        for _, end in ends:
            total += len(seen) - bisect_right(seen, end)
            insort(seen, end)
    return total


def _coordinates(
    layers: list[list[Handle]], ranks: dict[str, int]
) -> tuple[dict[str, PlacedNode], dict[Handle, tuple[float, float, float]], float, float]:
    """Boxes for real nodes, and (left x, centre y, right x) for every handle."""

    def size(h: Handle) -> float:
        return NODE_HEIGHT if isinstance(h, str) else DUMMY_HEIGHT

    heights = [sum(size(h) for h in layer) + GAP_Y * max(0, len(layer) - 1) for layer in layers]
    inner = max(heights, default=NODE_HEIGHT)
    width = 2 * MARGIN + len(layers) * NODE_WIDTH + max(0, len(layers) - 1) * GAP_X
    height = 2 * MARGIN + inner
    placed: dict[str, PlacedNode] = {}
    slots: dict[Handle, tuple[float, float, float]] = {}
    for number, layer in enumerate(layers):
        x = MARGIN + number * (NODE_WIDTH + GAP_X)
        y = MARGIN + (inner - heights[number]) / 2
        for order, handle in enumerate(layer):
            h = size(handle)
            slots[handle] = (x, y + h / 2, x + NODE_WIDTH)
            if isinstance(handle, str):
                placed[handle] = PlacedNode(handle, number, order, x, y, NODE_WIDTH, h)
            y += h + GAP_Y
    return dict(sorted(placed.items())), slots, width, height


def _curve(a: Point, b: Point) -> Segment:
    """An S-curve from ``a`` to ``b`` (b to the right of a), flat at both ends."""
    half = (b.x - a.x) / 2
    return Segment(Point(a.x + half, a.y), Point(b.x - half, b.y), b)


def _straight(a: Point, b: Point) -> Segment:
    return Segment(a, b, b)


def _route(chain: Sequence[Handle], slots: dict[Handle, tuple[float, float, float]]) -> PlacedEdge:
    """A forward edge: out of its source's right side, through each dummy, into the target."""
    first, last = chain[0], chain[-1]
    _, y0, right = slots[first]
    start = Point(right, y0)
    segments: list[Segment] = []
    at = start
    for handle in chain[1:-1]:
        left, y, right = slots[handle]
        segments.append(_curve(at, Point(left, y)))
        segments.append(_straight(Point(left, y), Point(right, y)))
        at = Point(right, y)
    left, y, _ = slots[last]
    segments.append(_curve(at, Point(left, y)))
    return PlacedEdge(str(first), str(last), start, tuple(segments))


def _route_back(pair: tuple[str, str], placed: dict[str, PlacedNode], height: float) -> PlacedEdge:
    """A back edge: out of the source's right side, looping below, into the target's left."""
    src, dst = placed[pair[0]], placed[pair[1]]
    start = Point(src.x + src.width, src.y + src.height / 2)
    end = Point(dst.x, dst.y + dst.height / 2)
    low = min(height, max(start.y, end.y) + NODE_HEIGHT)
    reach = MARGIN * 0.9
    segment = Segment(Point(start.x + reach, low), Point(end.x - reach, low), end)
    return PlacedEdge(pair[0], pair[1], start, (segment,), back=True)
