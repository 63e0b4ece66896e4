"""Column profiles of CSV and Parquet files, computed with pyarrow in bounded memory.

The profile is the reference the drift monitor compares live traffic against, so its
JSON form is stable and documented in ``docs/data.md`` (``format_version`` 1). Tables
are read in record batches: counts, nulls, min/max, mean/std and histograms are exact;
quantiles are exact up to :data:`SAMPLE_SIZE` non-null values per column and computed
from a seeded uniform sample beyond; top-k counts are exact up to
:data:`MAX_DISTINCT_TRACKED` distinct values (``top_k_exact`` says which).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.data._profile_columns import (
    HISTOGRAM_BINS,
    MAX_DISTINCT_TRACKED,
    QUANTILES,
    SAMPLE_SIZE,
    TOP_K,
    Accumulator,
    NumericAccumulator,
    accumulator_for,
)
from modelyard.data._scan import table_format

if TYPE_CHECKING:
    import pyarrow as pa

    from modelyard.data._scan import LocalFile

FORMAT_VERSION = 1
MAX_COLUMNS = 1000
BATCH_ROWS = 65_536

__all__ = [
    "FORMAT_VERSION",
    "HISTOGRAM_BINS",
    "MAX_DISTINCT_TRACKED",
    "QUANTILES",
    "SAMPLE_SIZE",
    "TOP_K",
    "profile_files",
    "profile_table",
    "table_format",
]


def profile_files(files: Sequence[LocalFile]) -> dict[str, Any]:
    """The profile document of a version: one table profile per CSV/Parquet file.

    A table that cannot be parsed gets ``{"format": …, "error": "<why>"}`` instead of
    failing the whole add.
    """
    tables: dict[str, Any] = {}
    for f in files:
        fmt = table_format(f.logical)
        if fmt is not None:
            tables[f.logical] = profile_table(f.path, fmt)
    return {"format_version": FORMAT_VERSION, "tables": tables}


def profile_table(path: Path, fmt: str) -> dict[str, Any]:
    """Profile one CSV or Parquet file (two streaming passes: stats, then histograms)."""
    import pyarrow as pa

    try:
        return _profile(path, fmt)
    except (pa.ArrowException, OSError, ValueError) as exc:
        return {"format": fmt, "error": f"{type(exc).__name__}: {exc}"}


def _profile(path: Path, fmt: str) -> dict[str, Any]:
    schema = _schema(path, fmt)
    fields = list(schema)[:MAX_COLUMNS]
    accs: dict[str, Accumulator] = {f.name: accumulator_for(f.type) for f in fields}
    rows = 0
    for batch in _batches(path, fmt, [f.name for f in fields]):
        rows += batch.num_rows
        for name, acc in accs.items():
            acc.add(batch.column(name))
    numeric = {n: a for n, a in accs.items() if isinstance(a, NumericAccumulator)}
    for acc in numeric.values():
        acc.start_histogram()
    if any(a.has_histogram for a in numeric.values()):
        for batch in _batches(path, fmt, list(numeric)):
            for name, acc in numeric.items():
                acc.add_to_histogram(batch.column(name))
    return {
        "format": fmt,
        "num_rows": rows,
        "num_columns": len(schema),
        "columns_profiled": len(fields),
        "schema": [
            {"name": f.name, "type": str(f.type), "nullable": bool(f.nullable)} for f in schema
        ],
        "columns": {name: acc.result() for name, acc in accs.items()},
    }


def _schema(path: Path, fmt: str) -> pa.Schema:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_schema(path)
    import pyarrow.csv as pacsv

    # Empty CSV fields are nulls in every column, as pandas reads them.
    options = pacsv.ConvertOptions(strings_can_be_null=True)
    with pacsv.open_csv(path, convert_options=options) as reader:
        return reader.schema


def _batches(path: Path, fmt: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as pf:
            yield from pf.iter_batches(batch_size=BATCH_ROWS, columns=columns)
        return
    import pyarrow.csv as pacsv

    wanted = set(columns)
    # Pin the types inferred from the first block, so later blocks parse the same way.
    types = {f.name: f.type for f in _schema(path, fmt) if f.name in wanted}
    options = pacsv.ConvertOptions(
        include_columns=columns, column_types=types, strings_can_be_null=True
    )
    with pacsv.open_csv(path, convert_options=options) as reader:
        yield from reader
