"""A lineage graph, as the API returns it, drawn as a Rich tree for a terminal.

``modelyard lineage``, ``modelyard models show`` and the quickstart's lineage step print
the same tree. Rich is imported when a tree is drawn, so importing this is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.tree import Tree


def render_lineage_tree(graph: dict[str, Any]) -> Tree:
    """A Rich tree: the root, its sources (⬆) and its consumers (⬇), edge types on arrows.

    Args:
        graph: the API's lineage answer: ``root`` (a node key), ``nodes`` (``key``,
            ``kind``, ``label``) and ``edges`` (``src``, ``dst``, ``type``).
    """
    from rich.tree import Tree

    nodes = {n["key"]: n for n in graph["nodes"]}
    root = graph["root"]

    def label(key: str) -> str:
        node = nodes.get(key)
        return f"[bold]{node['kind']}[/] {node['label']}" if node else key

    tree = Tree(label(root))
    for title, near, far in (("⬆ from", "dst", "src"), ("⬇ to", "src", "dst")):
        branch = Tree(title)
        _grow(branch, root, graph["edges"], near, far, label, {root})
        if branch.children:
            tree.add(branch)
    return tree


def _grow(
    tree: Tree,
    key: str,
    edges: list[Any],
    near: str,
    far: str,
    label: Callable[[str], str],
    path: set[str],
) -> None:
    for edge in sorted((e for e in edges if e[near] == key), key=lambda e: e[far]):
        child = edge[far]
        sub = tree.add(f"[dim]{edge['type']}[/] {label(child)}")
        if child not in path:
            _grow(sub, child, edges, near, far, label, path | {child})
