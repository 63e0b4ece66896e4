"""What the runs pages show, computed from runs: table columns and sort links, compare
rows and chart specs. Pure functions: no I/O, no HTML (templates do the markup).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.core.errors import InvalidInput
from modelyard.core.lineage import EdgeType, LineageGraph, NodeKind
from modelyard.core.tracking import Metric, Run
from modelyard.ui._render import fmt_duration, fmt_num, fmt_time

DEFAULT_KEYS = 6  # metric and param columns shown when none are chosen
MAX_COLUMNS = 40
DEFAULT_ORDER = "attributes.start_time DESC"
_PLAIN_KEY = re.compile(r"^[\w./:-]+$")
_ENTITIES = {"metrics": "metrics", "metric": "metrics", "params": "params", "param": "params"}


@dataclass(frozen=True)
class Column:
    """A metric or param column of the runs table."""

    entity: str  # "metrics" or "params"
    key: str

    @property
    def field(self) -> str:
        """The column in the search grammar, e.g. ``metrics.auc`` or ``params.`a b```."""
        return f"{self.entity}.{quote_key(self.key)}"

    @property
    def choice(self) -> str:
        """The column as a ``col=`` query value."""
        return f"{self.entity}.{self.key}"

    def value(self, run: Run) -> Any:
        if self.entity == "metrics":
            metric = run.metrics.get(self.key)
            return None if metric is None else metric.value
        return run.params.get(self.key)


def quote_key(key: str) -> str:
    """A key as the search grammar reads it: backquoted unless it is a plain word."""
    if _PLAIN_KEY.match(key) or "`" in key:
        return key
    return f"`{key}`"


def parse_columns(values: Sequence[str]) -> list[Column] | None:
    """The ``col=metrics.auc&col=params.lr`` choices; None when none were given.

    Raises:
        InvalidInput: a value that is not ``metrics.<key>`` or ``params.<key>``, or too many.
    """
    chosen = [v for v in values if v]
    if not chosen:
        return None
    if len(chosen) > MAX_COLUMNS:
        raise InvalidInput(f"at most {MAX_COLUMNS} columns (col) can be shown")
    out: list[Column] = []
    for value in chosen:
        prefix, dot, key = value.partition(".")
        entity = _ENTITIES.get(prefix)
        if not dot or entity is None or not key:
            raise InvalidInput(f"invalid col {value!r}: use metrics.<key> or params.<key>")
        column = Column(entity, key)
        if column not in out:
            out.append(column)
    return out


def default_columns(runs: Sequence[Run], order: str) -> list[Column]:
    """Up to six metric and six param keys, the most common on this page first; a column
    being sorted on is always shown."""
    metric_counts = Counter(k for r in runs for k in r.metrics)
    param_counts = Counter(k for r in runs for k in r.params)
    out = [Column("metrics", k) for k in _top(metric_counts)]
    out += [Column("params", k) for k in _top(param_counts)]
    sorted_on = order_column(order)
    if sorted_on is not None and sorted_on not in out:
        out.insert(0 if sorted_on.entity == "metrics" else len(out), sorted_on)
    return out


def _top(counts: Counter[str]) -> list[str]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [key for key, _ in ranked[:DEFAULT_KEYS]]


def order_column(order: str) -> Column | None:
    """The metric or param column an ``order=`` sorts on, if it is one."""
    text = order.strip()
    for suffix in (" DESC", " ASC"):
        if text.upper().endswith(suffix):
            text = text[: -len(suffix)].strip()
    prefix, dot, key = text.partition(".")
    entity = _ENTITIES.get(prefix.lower())
    if not dot or entity is None or not key:
        return None
    if len(key) >= 2 and key[0] == key[-1] == "`":
        key = key[1:-1]
    return Column(entity, key)


def next_order(current: str, field: str) -> str:
    """Where clicking a column header goes: descending first, then ascending."""
    return f"{field} ASC" if current.strip() == f"{field} DESC" else f"{field} DESC"


def sort_mark(current: str, field: str) -> str:
    """An arrow for the column the table is sorted on."""
    text = current.strip()
    if text == f"{field} DESC":
        return "▼"
    if text in (f"{field} ASC", field):
        return "▲"
    return ""


def duration_s(run: Run) -> float | None:
    if run.end_time_ms is None:
        return None
    return max(0.0, (run.end_time_ms - run.start_time_ms) / 1000.0)


def keys_on_page(runs: Sequence[Run]) -> list[Column]:
    """Every metric and param key of these runs: the choices of the column picker."""
    metrics = sorted({k for r in runs for k in r.metrics})
    params = sorted({k for r in runs for k in r.params})
    return [Column("metrics", k) for k in metrics] + [Column("params", k) for k in params]


# --- charts -------------------------------------------------------------------------------


def finite(value: float) -> float | None:
    """JSON has no NaN or Infinity: such points become gaps."""
    return value if math.isfinite(value) else None


def chart_spec(title: str, series: Iterable[tuple[str, Sequence[Metric]]]) -> dict[str, Any]:
    """A chart over steps for modelyard.js: one series per (label, history)."""
    return {
        "title": title,
        "x_label": "step",
        "series": [
            {"label": label, "x": [m.step for m in points], "y": [finite(m.value) for m in points]}
            for label, points in series
        ],
    }


# --- compare ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareRow:
    label: str
    values: tuple[str, ...]
    differ: bool


def _row(label: str, raw: Sequence[Any], shown: Sequence[str]) -> CompareRow:
    distinct = {repr(v) for v in raw}  # repr: NaN equals NaN, 1 differs from "1"
    return CompareRow(label, tuple(shown), len(distinct) > 1)


def compare_sections(runs: Sequence[Run]) -> list[tuple[str, list[CompareRow]]]:
    """Attributes, params, latest metrics and tags of runs, one value per run per row."""
    attributes = [
        _row("name", [r.name for r in runs], [r.name for r in runs]),
        _row("status", [r.status.value for r in runs], [r.status.value for r in runs]),
        _row("user", [r.user for r in runs], [r.user for r in runs]),
        _row("experiment", [r.experiment_id for r in runs], [str(r.experiment_id) for r in runs]),
        _row(
            "started",
            [r.start_time_ms for r in runs],
            [fmt_time(r.start_time_ms, True) for r in runs],
        ),
        _row(
            "duration", [duration_s(r) for r in runs], [fmt_duration(duration_s(r)) for r in runs]
        ),
    ]
    params = [
        _row(key, [r.params.get(key) for r in runs], [r.params.get(key, "-") for r in runs])
        for key in sorted({k for r in runs for k in r.params})
    ]
    metrics = []
    for key in sorted({k for r in runs for k in r.metrics}):
        values = [r.metrics[key].value if key in r.metrics else None for r in runs]
        metrics.append(_row(key, values, [fmt_num(v) for v in values]))
    tags = [
        _row(key, [r.tags.get(key) for r in runs], [r.tags.get(key, "-") for r in runs])
        for key in sorted({k for r in runs for k in r.tags})
    ]
    return [("Attributes", attributes), ("Params", params), ("Metrics", metrics), ("Tags", tags)]


# --- lineage ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Linked:
    """A dataset version or model version next to a run."""

    project: str
    name: str
    version: int


def run_neighbours(graph: LineageGraph, run_id: str) -> dict[str, list[Linked]]:
    """The run's dataset inputs, dataset outputs and registered model versions."""
    nodes = {n.key: n for n in graph.nodes}
    found: dict[str, list[Linked]] = {"inputs": [], "outputs": [], "models": []}
    for edge in graph.edges:
        if edge.type is EdgeType.INPUT and edge.dst.id == run_id:
            where, other = "inputs", edge.src
        elif edge.type is EdgeType.OUTPUT and edge.src.id == run_id:
            where, other = "outputs", edge.dst
        elif edge.type is EdgeType.PRODUCED and edge.src.id == run_id:
            where, other = "models", edge.dst
        else:
            continue
        node = nodes.get(other)
        if node is None or node.project is None:
            continue
        name_attr = "dataset" if other.kind is NodeKind.DATASET_VERSION else "model"
        name, version = node.attrs.get(name_attr), node.attrs.get("version")
        if isinstance(name, str) and isinstance(version, int):
            found[where].append(Linked(node.project, name, version))
    for items in found.values():
        items.sort(key=lambda x: (x.project, x.name, x.version))
    return found
