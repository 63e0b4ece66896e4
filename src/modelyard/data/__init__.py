"""Versioned datasets: immutable manifests of content-addressed files, with table profiles.

Importing this package is cheap: pyarrow is loaded only when a profile is computed.
The entities, names and ``name@vN`` / ``name@latest`` references live in
:mod:`modelyard.core.datasets` (the store and the client share them). The pieces:

- :mod:`modelyard.data.hashing` — parallel, chunked SHA-256 with a stat-keyed cache;
- :mod:`modelyard.data.profile` — the column profile of CSV/Parquet files (pyarrow);
- :mod:`modelyard.data.diff` — what changed between two versions;
- :mod:`modelyard.data.service` — the server-side rules (permissions, commits);
- :mod:`modelyard.data.add` — the client-side ``data add`` (hash, upload missing, commit);
- :mod:`modelyard.data._lineage_tree` — a lineage graph drawn as a terminal tree;
- :mod:`modelyard.data.fluent` — ``my.use_dataset`` and ``my.log_dataset``.
"""

from __future__ import annotations

from modelyard.core.datasets import (
    AddResult,
    Dataset,
    DatasetRef,
    DatasetVersion,
    DatasetVersionRef,
    parse_ref,
    validate_dataset_name,
)
from modelyard.data._lineage_tree import render_lineage_tree

__all__ = [
    "AddResult",
    "Dataset",
    "DatasetRef",
    "DatasetVersion",
    "DatasetVersionRef",
    "parse_ref",
    "render_lineage_tree",
    "validate_dataset_name",
]
