"""Step 2: version a real dataset (scikit-learn's breast cancer table) with its profile.

The version holds the table as Parquet and a small ``SOURCE.json`` saying where it came
from and when. The Parquet file is byte-identical on every run, so the server stores its
content once (content addressing); ``SOURCE.json`` changes, so every run makes a new
version.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.data.add import add_dataset

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.client import ModelyardClient
    from modelyard.data import AddResult

DATASET_NAME = "quickstart-data"
TABLE_FILE = "breast_cancer.parquet"
TARGET = "target"
SHOWN_COLUMNS = ("mean radius", "mean texture", "worst area", TARGET)


@dataclass(frozen=True)
class ColumnStats:
    """A few statistics of one profiled column, for display."""

    name: str
    kind: str
    null_count: int
    min: float | None
    max: float | None
    mean: float | None
    std: float | None


@dataclass(frozen=True)
class TableProfile:
    rows: int
    columns: int
    shown: tuple[ColumnStats, ...]


def write_source(directory: Path) -> pd.DataFrame:
    """Write the dataset's files into ``directory`` (created); returns the table."""
    import sklearn  # type: ignore[import-untyped]
    from sklearn.datasets import load_breast_cancer  # type: ignore[import-untyped]

    directory.mkdir(parents=True, exist_ok=True)
    frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    frame.to_parquet(directory / TABLE_FILE, index=False)
    source = {
        "source": "sklearn.datasets.load_breast_cancer",
        "description": "Wisconsin diagnostic breast cancer: 30 features, target 1 = benign",
        "scikit_learn": sklearn.__version__,
        "extracted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (directory / "SOURCE.json").write_text(json.dumps(source, indent=2) + "\n")
    return frame


def version_dataset(
    client: ModelyardClient, project: str, work_dir: Path
) -> tuple[AddResult, pd.DataFrame]:
    """Add the breast cancer table as the next version of ``quickstart-data``."""
    source = work_dir / DATASET_NAME
    frame = write_source(source)
    added = add_dataset(
        client,
        project,
        source,
        DATASET_NAME,
        message="breast cancer (scikit-learn), written by modelyard quickstart",
        cache_path=None,
    )
    return added, frame


def table_profile(profile: dict[str, Any]) -> TableProfile | None:
    """Rows, columns and the statistics of a few columns of the version's table."""
    table = profile.get("tables", {}).get(TABLE_FILE)
    if not isinstance(table, dict) or "num_rows" not in table:
        return None
    columns = table.get("columns", {})
    shown = tuple(
        ColumnStats(
            name,
            str(stats.get("kind", "?")),
            int(stats.get("null_count", 0)),
            stats.get("min"),
            stats.get("max"),
            stats.get("mean"),
            stats.get("std"),
        )
        for name in SHOWN_COLUMNS
        if isinstance(stats := columns.get(name), dict)
    )
    return TableProfile(int(table["num_rows"]), int(table["num_columns"]), shown)
