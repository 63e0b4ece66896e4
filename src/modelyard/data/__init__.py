"""Versioned datasets: immutable manifests of content-addressed files, with table profiles.

Importing this package is cheap: pyarrow is loaded only when a profile is computed.
The pieces:

- :mod:`modelyard.data._refs` — dataset names and ``name@vN`` / ``name@latest`` references;
- :mod:`modelyard.data._hashing` — parallel, chunked SHA-256 with a stat-keyed cache;
- :mod:`modelyard.data._profile` — the column profile of CSV/Parquet files (pyarrow);
- :mod:`modelyard.data._diff` — what changed between two versions;
- :mod:`modelyard.data._service` — the server-side rules (permissions, commits);
- :mod:`modelyard.data._add` — the client-side ``data add`` (hash, upload missing, commit);
- :mod:`modelyard.data.fluent` — ``my.use_dataset`` and ``my.log_dataset``.
"""

from __future__ import annotations

from modelyard.data._entities import AddResult, Dataset, DatasetVersion, DatasetVersionRef
from modelyard.data._refs import DatasetRef, parse_ref, validate_dataset_name

__all__ = [
    "AddResult",
    "Dataset",
    "DatasetRef",
    "DatasetVersion",
    "DatasetVersionRef",
    "parse_ref",
    "validate_dataset_name",
]
