"""Profiles agree with pandas on a small frame, in both file formats, and stay JSON-safe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.data import _profile_columns
from modelyard.data._scan import scan
from modelyard.data.profile import FORMAT_VERSION, profile_files, profile_table


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    values = rng.normal(10, 3, 500)
    values[::7] = np.nan
    return pd.DataFrame(
        {
            "x": values,
            "n": rng.integers(0, 100, 500),
            "city": rng.choice(["paris", "rome", "oslo", None], 500, p=[0.5, 0.3, 0.1, 0.1]),
        }
    )


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_numbers_match_pandas(frame: pd.DataFrame, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"t.{fmt}"
    frame.to_parquet(path) if fmt == "parquet" else frame.to_csv(path, index=False)
    profile = profile_table(path, fmt)
    json.dumps(profile, allow_nan=False)  # the stored form has no NaN/inf
    assert profile["num_rows"] == 500
    for name in ("x", "n"):
        col, series = profile["columns"][name], frame[name]
        assert col["kind"] == "numeric"
        assert col["null_count"] == series.isna().sum()
        assert col["count"] == series.count()
        assert col["min"] == pytest.approx(series.min())
        assert col["max"] == pytest.approx(series.max())
        assert col["mean"] == pytest.approx(series.mean())
        assert col["std"] == pytest.approx(series.std())
        for q, value in col["quantiles"].items():
            assert value == pytest.approx(series.quantile(float(q)))
        assert sum(col["histogram"]["counts"]) == series.count()
        assert len(col["histogram"]["edges"]) == len(col["histogram"]["counts"]) + 1
    city = profile["columns"]["city"]
    counts = frame["city"].value_counts()
    assert city["null_count"] == frame["city"].isna().sum()
    assert {i["value"]: i["count"] for i in city["top_k"]} == counts.to_dict()
    assert city["top_k"][0]["value"] == "paris"


def test_big_columns_use_a_sample_for_quantiles_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_profile_columns, "SAMPLE_SIZE", 1000)
    values = np.arange(20_000, dtype=np.float64)
    pd.DataFrame({"v": values}).to_parquet(tmp_path / "t.parquet", row_group_size=3000)
    col = profile_table(tmp_path / "t.parquet", "parquet")["columns"]["v"]
    assert col["quantiles_exact"] is False
    assert col["count"] == 20_000
    assert col["mean"] == pytest.approx(values.mean())
    assert col["std"] == pytest.approx(values.std(ddof=1))
    assert sum(col["histogram"]["counts"]) == 20_000  # exact, from the second pass
    assert col["quantiles"]["0.5"] == pytest.approx(10_000, rel=0.1)


def test_only_tables_are_profiled_and_broken_ones_say_why(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a table")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet either")
    pd.DataFrame({"a": [1, 2]}).to_csv(tmp_path / "ok.csv", index=False)
    doc = profile_files(scan(tmp_path))
    assert doc["format_version"] == FORMAT_VERSION
    assert sorted(doc["tables"]) == ["bad.parquet", "ok.csv"]
    assert "error" in doc["tables"]["bad.parquet"]
    assert doc["tables"]["ok.csv"]["columns"]["a"]["max"] == 2


def test_constant_and_empty_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"c": [3.0, 3.0, 3.0], "e": [np.nan, np.nan, np.nan]})
    frame.to_parquet(tmp_path / "t.parquet")
    cols = profile_table(tmp_path / "t.parquet", "parquet")["columns"]
    assert cols["c"]["histogram"] == {"edges": [3.0, 3.0], "counts": [3]}
    assert cols["c"]["std"] == 0.0
    assert cols["e"]["count"] == 0
    assert cols["e"]["mean"] is None
    assert cols["e"]["null_count"] == 3
