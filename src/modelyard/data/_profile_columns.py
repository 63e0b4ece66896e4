"""Per-column accumulators of the profile: numbers, categories, time, anything else.

Each accumulator sees a column one record batch at a time and keeps bounded state, so a
profile's memory does not grow with the table's row count.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

TOP_K = 20
HISTOGRAM_BINS = 20
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
SAMPLE_SIZE = 100_000
MAX_DISTINCT_TRACKED = 100_000
SAMPLE_SEED = 0


class Accumulator(Protocol):
    """Sees a column batch by batch; ``result`` is its JSON-ready profile."""

    def add(self, column: pa.Array | pa.ChunkedArray) -> None: ...

    def result(self) -> dict[str, Any]: ...


def accumulator_for(dtype: pa.DataType) -> Accumulator:
    """The accumulator for a column of type ``dtype``."""
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return NumericAccumulator(integer=pa.types.is_integer(dtype))
    if (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_boolean(dtype)
        or pa.types.is_dictionary(dtype)
    ):
        return CategoricalAccumulator()
    if pa.types.is_temporal(dtype):
        return TemporalAccumulator()
    return OtherAccumulator()


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class NumericAccumulator:
    """Exact count, nulls (NaN counts as null), min/max, mean/std (Chan's merge) and a
    fixed-bin histogram; quantiles from all values or a seeded uniform sample."""

    kind = "numeric"

    def __init__(self, *, integer: bool) -> None:
        self.integer = integer
        self.count = self.nulls = self.infinite = 0
        self.mean = self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self._rng = np.random.default_rng(SAMPLE_SEED)
        self._sample = np.empty(0, dtype=np.float64)
        self._keys = np.empty(0, dtype=np.float64)
        self._edges: npt.NDArray[np.float64] | None = None
        self._counts: npt.NDArray[np.int64] | None = None

    def _finite(self, column: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.float64]:
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.float64)

    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        values = self._finite(column)
        nan = np.isnan(values)
        inf = np.isinf(values)
        self.nulls += int(nan.sum())  # to_numpy turns nulls into NaN
        self.infinite += int(inf.sum())
        values = values[~(nan | inf)]
        n = len(values)
        if n == 0:
            return
        batch_mean = float(values.mean())
        batch_m2 = float(((values - batch_mean) ** 2).sum())
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * n / total
        self.m2 += batch_m2 + delta * delta * self.count * n / total
        self.count = total
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        self._keep_sample(values)

    def _keep_sample(self, values: npt.NDArray[np.float64]) -> None:
        # Priority sampling: every value gets a random key, the smallest keys survive;
        # that is a uniform sample without replacement, whatever the batch sizes.
        keys = np.concatenate([self._keys, self._rng.random(len(values))])
        sample = np.concatenate([self._sample, values])
        if len(sample) > SAMPLE_SIZE:
            keep = np.argpartition(keys, SAMPLE_SIZE)[:SAMPLE_SIZE]
            keys, sample = keys[keep], sample[keep]
        self._keys, self._sample = keys, sample

    @property
    def has_histogram(self) -> bool:
        return self._edges is not None and self.min < self.max

    def start_histogram(self) -> None:
        if self.count == 0:
            return
        if self.min == self.max:
            self._edges = np.array([self.min, self.max])
            self._counts = np.array([self.count], dtype=np.int64)
            return
        self._edges = np.linspace(self.min, self.max, HISTOGRAM_BINS + 1)
        self._counts = np.zeros(HISTOGRAM_BINS, dtype=np.int64)

    def add_to_histogram(self, column: pa.Array | pa.ChunkedArray) -> None:
        if not self.has_histogram or self._edges is None or self._counts is None:
            return
        values = self._finite(column)
        values = values[np.isfinite(values)]
        counts, _ = np.histogram(values, bins=self._edges)
        self._counts += counts

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "count": self.count,
            "null_count": self.nulls,
            "infinite_count": self.infinite,
        }
        if self.count == 0:
            out.update(min=None, max=None, mean=None, std=None, quantiles=None, histogram=None)
            return out
        as_num = int if self.integer else float
        quantiles = np.quantile(self._sample, QUANTILES)
        out.update(
            min=as_num(self.min),
            max=as_num(self.max),
            mean=_json_float(self.mean),
            std=_json_float(math.sqrt(self.m2 / (self.count - 1))) if self.count > 1 else None,
            quantiles={f"{q:g}": _json_float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
            quantiles_exact=self.count <= SAMPLE_SIZE,
            histogram=None
            if self._edges is None or self._counts is None
            else {
                "edges": [float(e) for e in self._edges],
                "counts": [int(c) for c in self._counts],
            },
        )
        return out


class CategoricalAccumulator:
    """Strings, booleans and dictionary columns: value frequencies, top-k."""

    kind = "categorical"

    def __init__(self) -> None:
        self.count = self.nulls = 0
        self.counts: Counter[str] = Counter()
        self.exact = True

    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        self.nulls += column.null_count
        self.count += len(column) - column.null_count
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            column = pc.cast(column, pa.string())
        for item in pc.value_counts(column.drop_null()).to_pylist():
            self.counts[str(item["values"])] += int(item["counts"])
        if len(self.counts) > MAX_DISTINCT_TRACKED:
            # Past the bound, keep the most frequent half: top-k becomes approximate.
            self.exact = False
            self.counts = Counter(dict(self.counts.most_common(MAX_DISTINCT_TRACKED // 2)))

    def result(self) -> dict[str, Any]:
        top = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_K]
        return {
            "kind": self.kind,
            "count": self.count,
            "null_count": self.nulls,
            "distinct_count": len(self.counts) if self.exact else None,
            "top_k": [{"value": v, "count": c} for v, c in top],
            "top_k_exact": self.exact,
        }


class TemporalAccumulator:
    """Dates and timestamps: count, nulls and the ISO 8601 min/max."""

    kind = "temporal"

    def __init__(self) -> None:
        self.count = self.nulls = 0
        self.min: Any = None
        self.max: Any = None

    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        self.nulls += column.null_count
        self.count += len(column) - column.null_count
        bounds = pc.min_max(column).as_py()
        lo, hi = bounds["min"], bounds["max"]
        if lo is not None:
            self.min = lo if self.min is None else min(self.min, lo)
            self.max = hi if self.max is None else max(self.max, hi)

    def result(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "null_count": self.nulls,
            "min": None if self.min is None else self.min.isoformat(),
            "max": None if self.max is None else self.max.isoformat(),
        }


class OtherAccumulator:
    """Any other type (lists, structs, binary): count and nulls."""

    kind = "other"

    def __init__(self) -> None:
        self.count = self.nulls = 0

    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        self.nulls += column.null_count
        self.count += len(column) - column.null_count

    def result(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "null_count": self.nulls}
