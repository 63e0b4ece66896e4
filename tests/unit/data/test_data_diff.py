"""Diffs of files and of table profiles."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from modelyard.core.entities import ArtifactEntry
from modelyard.data.diff import diff_versions, top_k_distance


def _e(path: str, char: str, size: int = 1) -> ArtifactEntry:
    return ArtifactEntry(path, char * 64, size)


def _table(rows: int, columns: dict[str, Any], schema: dict[str, str]) -> dict[str, Any]:
    return {
        "num_rows": rows,
        "schema": [{"name": n, "type": t} for n, t in schema.items()],
        "columns": columns,
    }


def test_files_added_removed_changed() -> None:
    old = [_e("a", "a"), _e("b", "b"), _e("c", "c")]
    new = [_e("a", "a"), _e("b", "d", 2), _e("e", "e")]
    diff = diff_versions(old, new, {}, {})
    assert [f.path for f in diff.added] == ["e"]
    assert [f.path for f in diff.removed] == ["c"]
    assert [(c.path, c.old_size, c.new_size) for c in diff.changed] == [("b", 1, 2)]
    assert diff.unchanged == 1
    assert not diff.is_empty
    assert diff_versions(old, old, {}, {}).is_empty


def test_table_schema_rows_and_columns() -> None:
    num_old = {"kind": "numeric", "count": 10, "null_count": 0, "mean": 1.0, "std": 1.0}
    num_new = {"kind": "numeric", "count": 12, "null_count": 2, "mean": 2.0, "std": 1.0}
    cat_old = {"kind": "categorical", "top_k": [{"value": "a", "count": 5}]}
    cat_new = {"kind": "categorical", "top_k": [{"value": "b", "count": 5}]}
    old = _table(10, {"x": num_old, "s": cat_old}, {"x": "double", "s": "string", "gone": "int64"})
    new = _table(12, {"x": num_new, "s": cat_new}, {"x": "float", "s": "string", "fresh": "int64"})
    diff = diff_versions(
        [_e("t.parquet", "a")],
        [_e("t.parquet", "b")],
        {"tables": {"t.parquet": old}},
        {"tables": {"t.parquet": new}},
    )
    (table,) = diff.tables
    assert table.rows == (10, 12)
    assert table.added_columns == ("fresh",)
    assert table.removed_columns == ("gone",)
    assert table.type_changes == {"x": ("double", "float")}
    by_name = {c.column: c for c in table.columns}
    assert by_name["x"].stats == {"count": (10, 12), "null_count": (0, 2), "mean": (1.0, 2.0)}
    assert by_name["s"].top_k_distance == 1.0


TOPS = st.lists(
    st.fixed_dictionaries({"value": st.sampled_from("abcde"), "count": st.integers(1, 100)}),
    min_size=1,
    max_size=5,
    unique_by=lambda d: d["value"],
)


@given(TOPS, TOPS)
def test_top_k_distance_is_a_bounded_symmetric_metric(p: list[Any], q: list[Any]) -> None:
    d = top_k_distance(p, q)
    assert 0.0 <= d <= 1.0
    assert d == top_k_distance(q, p)
    assert top_k_distance(p, p) == 0.0
