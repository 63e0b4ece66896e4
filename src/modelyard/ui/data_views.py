"""Dataset pages' view models: a profile, a diff and a version's lineage in fixed shapes.

A profile is a JSON document a client committed (docs/data.md); only its outer shape is
checked on commit. Everything here reads it with ``.get`` and type checks, so a field in
an unexpected shape is left out instead of failing the page, and the templates (strict
about undefined names) only ever see the attributes defined below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from modelyard.data.diff import DatasetDiff
from modelyard.lineage import EdgeType, LineageGraph
from modelyard.ui.lineage_nodes import NodeView, node_view

MAX_COLUMNS_SHOWN = 300
MAX_FILES_SHOWN = 500
MAX_LINKS = 100
_STAT_LABELS = (
    ("count", "count"),
    ("null_count", "nulls"),
    ("infinite_count", "infinite"),
    ("distinct_count", "distinct"),
    ("min", "min"),
    ("max", "max"),
    ("mean", "mean"),
    ("std", "std"),
)


@dataclass(frozen=True)
class Bar:
    height: float  # percent of the tallest bar
    title: str


@dataclass(frozen=True)
class TopValue:
    value: str
    count: Any
    percent: float


@dataclass(frozen=True)
class ColumnView:
    name: str
    kind: str
    type: str
    stats: list[tuple[str, Any]]
    quantiles: list[tuple[str, Any]]
    bars: list[Bar] = field(default_factory=list)
    top: list[TopValue] = field(default_factory=list)
    span: tuple[float, float] | None = None  # the histogram's first and last edge


@dataclass(frozen=True)
class TableView:
    path: str
    format: str
    error: str
    num_rows: Any
    num_columns: Any
    schema: list[tuple[str, str, bool]]
    columns: list[ColumnView]
    hidden_columns: int


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _scalar(value: Any) -> Any:
    """A value to print: numbers and strings as they are, anything else as JSON-ish text."""
    if value is None or isinstance(value, str | bool) or _finite(value):
        return value
    return str(value)


def _bars(histogram: Any) -> list[Bar]:
    if not isinstance(histogram, dict):
        return []
    edges, counts = histogram.get("edges"), histogram.get("counts")
    if not isinstance(edges, list) or not isinstance(counts, list):
        return []
    if len(edges) != len(counts) + 1 or not all(_finite(v) for v in edges + counts):
        return []
    tallest = max(counts, default=0)
    return [
        Bar(
            round(100.0 * c / tallest, 1) if tallest > 0 else 0.0,
            f"{edges[i]:.6g} to {edges[i + 1]:.6g}: {c:,}",
        )
        for i, c in enumerate(counts)
    ]


def _top(items: Any, total: Any) -> list[TopValue]:
    if not isinstance(items, list):
        return []
    found = [i for i in items if isinstance(i, dict) and _finite(i.get("count"))]
    whole = total if _finite(total) and total > 0 else sum(i["count"] for i in found)
    return [
        TopValue(
            str(i.get("value")), i["count"], round(100.0 * i["count"] / whole, 1) if whole else 0
        )
        for i in found
    ]


def _column(name: str, column: Any, types: dict[str, str]) -> ColumnView:
    data = column if isinstance(column, dict) else {}
    quantiles = data.get("quantiles")
    bars = _bars(data.get("histogram"))
    edges = data["histogram"]["edges"] if bars else []
    return ColumnView(
        name=name,
        kind=str(data.get("kind", "")),
        type=types.get(name, ""),
        stats=[(label, _scalar(data[key])) for key, label in _STAT_LABELS if key in data],
        quantiles=[(str(q), _scalar(v)) for q, v in quantiles.items()]
        if isinstance(quantiles, dict)
        else [],
        bars=bars,
        top=_top(data.get("top_k"), data.get("count")),
        span=(edges[0], edges[-1]) if edges else None,
    )


def _table(path: str, table: Any) -> TableView:
    data = table if isinstance(table, dict) else {}
    fields = data.get("schema")
    schema = [
        (str(c.get("name", "")), str(c.get("type", "")), bool(c.get("nullable", True)))
        for c in (fields if isinstance(fields, list) else [])
        if isinstance(c, dict)
    ]
    columns = data.get("columns")
    columns = columns if isinstance(columns, dict) else {}
    types = {name: kind for name, kind, _ in schema}
    shown = list(columns.items())[:MAX_COLUMNS_SHOWN]
    return TableView(
        path=path,
        format=str(data.get("format", "")),
        error=str(data.get("error", "")),
        num_rows=_scalar(data.get("num_rows")),
        num_columns=_scalar(data.get("num_columns")),
        schema=schema,
        columns=[_column(str(n), c, types) for n, c in shown],
        hidden_columns=len(columns) - len(shown),
    )


def profile_view(profile: dict[str, Any]) -> list[TableView]:
    """One view per profiled table, in path order."""
    tables = profile.get("tables") if isinstance(profile, dict) else None
    if not isinstance(tables, dict):
        return []
    return [_table(str(path), tables[path]) for path in sorted(tables, key=str)]


def diff_view(diff: DatasetDiff) -> dict[str, Any]:
    """What the diff template shows: bounded file lists with their full counts, and the
    tables' changes (stats as (label, old, new) rows)."""
    return {
        "counts": {
            "added": len(diff.added),
            "removed": len(diff.removed),
            "changed": len(diff.changed),
            "unchanged": diff.unchanged,
        },
        "added": diff.added[:MAX_FILES_SHOWN],
        "removed": diff.removed[:MAX_FILES_SHOWN],
        "changed": diff.changed[:MAX_FILES_SHOWN],
        "shown": MAX_FILES_SHOWN,
        "tables": [
            {
                "path": t.path,
                "rows": (_scalar(t.rows[0]), _scalar(t.rows[1])),
                "added_columns": t.added_columns,
                "removed_columns": t.removed_columns,
                "type_changes": sorted(t.type_changes.items()),
                "columns": [
                    {
                        "name": c.column,
                        "kind": c.kind,
                        "stats": [(k, _scalar(o), _scalar(n)) for k, (o, n) in c.stats.items()],
                        "top_k_distance": c.top_k_distance,
                    }
                    for c in t.columns
                ],
            }
            for t in diff.tables
        ],
    }


def lineage_links(up: LineageGraph, down: LineageGraph) -> dict[str, Any]:
    """A dataset version's neighbours: the runs that wrote it, the data those runs read
    (its parents) and the runs that read it, each capped at :data:`MAX_LINKS`."""
    up_nodes = {n.key: n for n in up.nodes}
    down_nodes = {n.key: n for n in down.nodes}
    root = up.root
    writers = sorted({e.src for e in up.edges if e.dst == root and e.type is EdgeType.OUTPUT})
    parents = sorted(
        {e.src for e in up.edges if e.dst in writers and e.type is EdgeType.INPUT and e.src != root}
    )
    readers = sorted({e.dst for e in down.edges if e.src == root and e.type is EdgeType.INPUT})

    def views(keys: list[Any], nodes: dict[Any, Any]) -> list[NodeView]:
        return [node_view(nodes[k]) for k in keys[:MAX_LINKS] if k in nodes]

    return {
        "produced_by": views(writers, up_nodes),
        "parents": views(parents, up_nodes),
        "used_by": views(readers, down_nodes),
        "used_by_count": len(readers),
    }
