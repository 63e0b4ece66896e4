"""What changed between two dataset versions: files, and for tables, schema and columns.

A pure function of two (files, profile) pairs, so the server, the CLI and tests share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelyard.core.entities import ArtifactEntry


@dataclass(frozen=True)
class FileChange:
    """A file present in both versions with different content."""

    path: str
    old_digest: str
    new_digest: str
    old_size: int
    new_size: int


@dataclass(frozen=True)
class ColumnChange:
    """How one column's distribution moved (``None`` where a side has no such stat).

    ``top_k_distance`` is the total variation distance between the two top-k frequency
    tables (0 = same, 1 = disjoint), for categorical columns.
    """

    column: str
    kind: str
    stats: dict[str, tuple[Any, Any]]
    top_k_distance: float | None = None


@dataclass(frozen=True)
class TableDiff:
    """Schema and distribution changes of one table path present in both versions."""

    path: str
    rows: tuple[int | None, int | None]
    added_columns: tuple[str, ...] = ()
    removed_columns: tuple[str, ...] = ()
    type_changes: dict[str, tuple[str, str]] = field(default_factory=dict)
    columns: tuple[ColumnChange, ...] = ()


@dataclass(frozen=True)
class DatasetDiff:
    """Files added, removed and changed, and the tables' changes."""

    added: tuple[ArtifactEntry, ...]
    removed: tuple[ArtifactEntry, ...]
    changed: tuple[FileChange, ...]
    unchanged: int
    tables: tuple[TableDiff, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


_NUMERIC_STATS = ("count", "null_count", "min", "max", "mean", "std")
_CATEGORICAL_STATS = ("count", "null_count", "distinct_count")


def diff_versions(
    old_files: Sequence[ArtifactEntry],
    new_files: Sequence[ArtifactEntry],
    old_profile: dict[str, Any],
    new_profile: dict[str, Any],
) -> DatasetDiff:
    """Compare two versions (by their files and profile documents)."""
    old = {f.path: f for f in old_files}
    new = {f.path: f for f in new_files}
    changed = tuple(
        FileChange(p, old[p].digest, new[p].digest, old[p].size, new[p].size)
        for p in sorted(old.keys() & new.keys())
        if old[p].digest != new[p].digest
    )
    old_tables = old_profile.get("tables", {}) if isinstance(old_profile, dict) else {}
    new_tables = new_profile.get("tables", {}) if isinstance(new_profile, dict) else {}
    changed_paths = {c.path for c in changed}
    tables = tuple(
        diff_tables(p, old_tables[p], new_tables[p])
        for p in sorted(old_tables.keys() & new_tables.keys() & changed_paths)
    )
    return DatasetDiff(
        added=tuple(new[p] for p in sorted(new.keys() - old.keys())),
        removed=tuple(old[p] for p in sorted(old.keys() - new.keys())),
        changed=changed,
        unchanged=len(old.keys() & new.keys()) - len(changed),
        tables=tables,
    )


def _schema(table: dict[str, Any]) -> dict[str, str]:
    return {str(c["name"]): str(c["type"]) for c in table.get("schema", [])}


def diff_tables(path: str, old: dict[str, Any], new: dict[str, Any]) -> TableDiff:
    """Schema changes, row counts and per-column stat changes of one table."""
    old_schema, new_schema = _schema(old), _schema(new)
    old_cols: dict[str, Any] = old.get("columns", {})
    new_cols: dict[str, Any] = new.get("columns", {})
    columns = tuple(
        change
        for name in sorted(old_cols.keys() & new_cols.keys())
        if (change := _column_change(name, old_cols[name], new_cols[name])) is not None
    )
    return TableDiff(
        path=path,
        rows=(old.get("num_rows"), new.get("num_rows")),
        added_columns=tuple(sorted(new_schema.keys() - old_schema.keys())),
        removed_columns=tuple(sorted(old_schema.keys() - new_schema.keys())),
        type_changes={
            n: (old_schema[n], new_schema[n])
            for n in sorted(old_schema.keys() & new_schema.keys())
            if old_schema[n] != new_schema[n]
        },
        columns=columns,
    )


def _column_change(name: str, old: dict[str, Any], new: dict[str, Any]) -> ColumnChange | None:
    kind = str(new.get("kind", ""))
    keys = _NUMERIC_STATS if kind == "numeric" else _CATEGORICAL_STATS
    stats = {k: (old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)}
    distance = None
    if kind == "categorical" and old.get("kind") == "categorical":
        distance = top_k_distance(old.get("top_k", []), new.get("top_k", []))
        if distance == 0.0:
            distance = None
    if not stats and distance is None:
        return None
    return ColumnChange(name, kind, stats, distance)


def top_k_distance(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> float:
    """Total variation distance between two top-k tables, each normalised to sum 1."""
    p = _frequencies(old)
    q = _frequencies(new)
    if not p or not q:
        return 0.0 if p == q else 1.0
    return round(0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in p.keys() | q.keys()), 6)


def _frequencies(top: list[dict[str, Any]]) -> dict[str, float]:
    total = sum(int(item["count"]) for item in top)
    return {str(i["value"]): int(i["count"]) / total for i in top} if total else {}
