"""Data drift between a reference (the training data) and current data (production inputs).

One statistical test per column, chosen and decided as Evidently's ``DataDriftPreset``
does by default (``docs/monitoring.md``, "Drift", has the tables), then a dataset-level
verdict from the share of drifted columns. Pure functions: no I/O, no global state.

Speed: each numeric column is sorted once per side (numpy's SIMD sort, in a buffer each
worker thread reuses) or, when a probe finds few distinct values, counted by hashing and
laid out in order; every numeric statistic is then read off the sorted arrays
(:mod:`._stattests`). Categorical columns are counted with pyarrow's hash kernels.
Columns run on a small thread pool (numpy's sort and pyarrow's kernels release the GIL).
A :class:`PreparedReference` keeps the sorted reference and its category counts, so
window after window against the same training data only the current data is sorted.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from modelyard.core.errors import InvalidInput
from modelyard.monitor import _stattests as st
from modelyard.monitor._stattests import FloatArray, IntArray, drift_verdict

__all__ = [
    "DriftOptions",
    "DriftReport",
    "FeatureDrift",
    "PreparedReference",
    "compute_drift",
    "drift_verdict",
    "prepare_reference",
]

Kind: TypeAlias = Literal["numeric", "categorical"]
TableLike: TypeAlias = "pa.Table | pd.DataFrame | Mapping[str, Any]"

#: Evidently picks p-value tests up to this many (non-missing) reference values per
#: column and distances above it.
SMALL_REFERENCE_MAX_ROWS = 1000
#: A numeric column with at most this many distinct values over both sides is tested
#: like a categorical one (chi-squared/z at small sizes, Jensen-Shannon at large).
FEW_VALUES_MAX = 5
#: An integer column with at most this many distinct reference values is categorical.
INTEGER_CARDINALITY_LIMIT = 10
DEFAULT_DRIFT_SHARE = 0.5

_NUMBER_CLASSES = frozenset({"float", "int"})
# Up to this many distinct values, a sorted array's runs are found by binary search.
_DISTINCT_BY_SEARCH = 1000
# A numeric column is probed with this many evenly spread values; at most 1/8 of them
# distinct means few values overall, and then it is counted by hashing instead of sorted.
_PROBE = 4096
_COUNTED_MAX_DISTINCT = 1 << 16
_LAY_OUT_BY_SLICES = 4096


# --- options and results -----------------------------------------------------------------


@dataclass(frozen=True)
class DriftOptions:
    """How each column is tested and when the dataset counts as drifted.

    ``stattest`` applies to every column, ``num_stattest``/``cat_stattest`` to the numeric
    or categorical ones (over ``stattest``), ``per_column`` to the named ones (over
    both); None leaves Evidently's default choice. Thresholds resolve in the order
    ``per_column_threshold``, ``num_threshold``/``cat_threshold``, ``threshold``, then the
    chosen test's default. ``categorical``/``numerical`` force a column's kind.
    ``workers`` caps the threads (None: one per CPU).
    """

    stattest: str | None = None
    per_column: Mapping[str, str] = field(default_factory=dict)
    threshold: float | None = None
    per_column_threshold: Mapping[str, float] = field(default_factory=dict)
    drift_share: float = DEFAULT_DRIFT_SHARE
    categorical: frozenset[str] = frozenset()
    numerical: frozenset[str] = frozenset()
    num_stattest: str | None = None
    cat_stattest: str | None = None
    num_threshold: float | None = None
    cat_threshold: float | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        for kind in ("categorical", "numerical"):  # accept any iterable of names
            object.__setattr__(self, kind, frozenset(getattr(self, kind)))
        for label, name in (
            ("stattest", self.stattest),
            ("num_stattest", self.num_stattest),
            ("cat_stattest", self.cat_stattest),
            *((f"per_column[{c!r}]", t) for c, t in self.per_column.items()),
        ):
            if name is not None and name not in st.TESTS:
                raise InvalidInput(
                    f"{label}: unknown stattest {name!r}; expected one of {', '.join(st.TESTS)}"
                )
        for tname, allowed in (
            ("num_stattest", st.NUMERIC_TESTS),
            ("cat_stattest", st.CATEGORICAL_TESTS),
        ):
            value = getattr(self, tname)
            if value is not None and value not in allowed:
                raise InvalidInput(
                    f"{tname}: {value!r} does not apply to "
                    f"{'numeric' if tname == 'num_stattest' else 'categorical'} columns"
                )
        for label, value in (
            ("threshold", self.threshold),
            ("num_threshold", self.num_threshold),
            ("cat_threshold", self.cat_threshold),
            *((f"per_column_threshold[{c!r}]", t) for c, t in self.per_column_threshold.items()),
        ):
            if value is not None and not (isinstance(value, int | float) and 0 < value < math.inf):
                raise InvalidInput(f"{label} must be a positive finite number, got {value!r}")
        if not (isinstance(self.drift_share, int | float) and 0 < self.drift_share <= 1):
            raise InvalidInput(f"drift_share must be in (0, 1], got {self.drift_share!r}")
        both = self.categorical & self.numerical
        if both:
            raise InvalidInput(f"columns forced both categorical and numerical: {_names(both)}")
        if self.workers is not None and self.workers < 1:
            raise InvalidInput(f"workers must be at least 1, got {self.workers!r}")


@dataclass(frozen=True)
class FeatureDrift:
    """The drift verdict of one column.

    ``statistic`` is the p-value for p-value tests (``ks``, ``chisquare``, ``z``; also in
    ``p_value``) and the distance or score otherwise (``p_value`` None). Rows count every
    row of the column; the missing shares (null, NaN, ±inf) were dropped before testing.
    ``tested`` is False when one side has no values left; such a column is never drifted
    and does not count in the dataset's drift share (``note`` says why).
    """

    column: str
    kind: Kind
    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int
    missing_share_reference: float
    missing_share_current: float
    tested: bool = True
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "test": self.test,
            "statistic": _json_float(self.statistic),
            "p_value": _json_float(self.p_value),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "tested": self.tested,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "missing_share_reference": self.missing_share_reference,
            "missing_share_current": self.missing_share_current,
            "note": self.note,
        }


@dataclass(frozen=True)
class DriftReport:
    """Per-column verdicts and the dataset verdict (``drift_share >= share_threshold``).

    ``drift_share`` is the share of drifted columns among the tested ones. ``skipped``
    names reference columns of types no test applies to (dates, lists, bytes), left out
    when no ``columns`` were given.
    """

    features: tuple[FeatureDrift, ...]
    drift_share: float
    dataset_drift: bool
    share_threshold: float
    skipped: tuple[str, ...] = ()

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        return tuple(f.column for f in self.features if f.drifted)

    def __getitem__(self, column: str) -> FeatureDrift:
        for f in self.features:
            if f.column == column:
                return f
        raise KeyError(column)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "share_threshold": self.share_threshold,
            "number_of_columns": len(self.features),
            "number_of_tested_columns": sum(f.tested for f in self.features),
            "number_of_drifted_columns": len(self.drifted_columns),
            "drifted_columns": list(self.drifted_columns),
            "skipped": list(self.skipped),
            "features": [f.to_json() for f in self.features],
        }


# --- column sources: whatever the caller passed, classified --------------------------------


@dataclass(frozen=True)
class _Source:
    """One column of the caller's data: its class of values, row count and raw values."""

    cls: str  # "float" | "int" | "bool" | "string" | "null" | "unsupported:<type>"
    rows: int
    values: Any  # np.ndarray, pa.Array or pa.ChunkedArray


def _arrow_class(t: Any) -> str:
    if pa.types.is_dictionary(t):
        return _arrow_class(t.value_type)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_null(t):
        return "null"
    return f"unsupported:{t}"


def _arrow_source(values: Any) -> _Source:
    return _Source(_arrow_class(values.type), len(values), values)


def _object_source(values: Any, where: str, name: str) -> _Source:
    try:
        return _arrow_source(pa.array(values, from_pandas=True))
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InvalidInput(f"column {name!r} in {where} mixes types: {exc}") from exc


_NUMPY_CLASSES = {"f": "float", "i": "int", "u": "int", "b": "bool", "U": "string"}


def _numpy_class(dtype: np.dtype[Any]) -> str | None:
    """The class of a numpy dtype's values; None for object arrays (the values decide)."""
    if dtype.kind == "O":
        return None
    return _NUMPY_CLASSES.get(dtype.kind, f"unsupported:{dtype}")


def _numpy_source(values: np.ndarray[Any, Any], where: str, name: str) -> _Source:
    if values.ndim != 1:
        raise InvalidInput(f"column {name!r} in {where} must be one-dimensional")
    cls = _numpy_class(values.dtype)
    if cls is None:
        return _object_source(values, where, name)
    return _Source(cls, values.size, pa.array(values) if cls == "string" else values)


def _pandas_source(series: pd.Series[Any], where: str, name: str) -> _Source:
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind != "O":
        return _numpy_source(series.to_numpy(), where, name)
    return _object_source(series, where, name)


class _Table:
    """Uniform access to the columns of a pyarrow Table, a DataFrame or a mapping."""

    def __init__(self, data: Any, where: str) -> None:
        self.where = where
        self._sources: dict[str, _Source] = {}
        self.data: Any = data
        if isinstance(data, pa.Table):
            self._labels: dict[str, Any] = {c: c for c in data.column_names}
        elif isinstance(data, pd.DataFrame | Mapping):
            self._labels = {
                str(c): c for c in (data.columns if isinstance(data, pd.DataFrame) else data)
            }
        else:
            raise InvalidInput(
                f"{where} must be a pyarrow Table, a pandas DataFrame or a mapping of column "
                f"name to array, got {type(data).__name__}"
            )

    @property
    def names(self) -> list[str]:
        return list(self._labels)

    def rows(self, names: Sequence[str]) -> int:
        if isinstance(self.data, pa.Table | pd.DataFrame):
            return len(self.data)
        return min((len(self.data[self._labels[n]]) for n in names), default=0)

    def raw(self, name: str) -> Any:
        """The column as the caller passed it."""
        if isinstance(self.data, pa.Table):
            return self.data.column(name)
        return self.data[self._labels[name]]

    def source(self, name: str) -> _Source:
        src = self._sources.get(name)
        if src is None:
            src = self._sources[name] = self._source(name)
        return src

    def _source(self, name: str) -> _Source:
        if isinstance(self.data, pa.Table):
            return _arrow_source(self.data.column(name))
        if isinstance(self.data, pd.DataFrame):
            return _pandas_source(self.data[self._labels[name]], self.where, name)
        values = self.data[self._labels[name]]
        if isinstance(values, pa.Array | pa.ChunkedArray):
            return _arrow_source(values)
        if isinstance(values, pd.Series):
            return _pandas_source(values, self.where, name)
        return _numpy_source(np.asarray(values), self.where, name)


class _Scratch(threading.local):
    """Per-thread buffers, reused column after column within one call.

    Sorting each column in a reused buffer instead of a new array keeps the memory a call
    touches to a few buffers per thread: on these VMs first-touching fresh memory costs
    about as much as sorting it.
    """

    def __init__(self) -> None:
        self.buffers: dict[str, FloatArray] = {}

    def get(self, key: str, n: int) -> FloatArray:
        buf = self.buffers.get(key)
        if buf is None or buf.size < n:
            buf = self.buffers[key] = np.empty(max(n, 1))
        return buf[:n]


def _fill_float64(src: _Source, out: FloatArray) -> None:
    """Write the values into ``out`` as float64, missing ones as NaN."""
    values = src.values
    if isinstance(values, np.ndarray):
        np.copyto(out, values, casting="unsafe")
        return
    if src.cls == "null":
        out.fill(np.nan)
        return
    pos = 0
    for chunk in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
        k = len(chunk)
        if k:
            _fill_chunk(chunk, out[pos : pos + k])
        pos += k


def _fill_chunk(chunk: Any, out: FloatArray) -> None:
    t = chunk.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        # The values buffer as it is (zero-copy); null slots hold arbitrary values.
        data = np.frombuffer(
            chunk.buffers()[1], dtype=t.to_pandas_dtype(), count=chunk.offset + len(chunk)
        )[chunk.offset :]
        np.copyto(out, data, casting="unsafe")
        if chunk.null_count:
            out[chunk.is_null().to_numpy(zero_copy_only=False)] = np.nan
        return
    if pa.types.is_dictionary(t):
        chunk = chunk.dictionary_decode()
    converted = pc.cast(chunk, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    np.copyto(out, converted)


def _sorted_finite(
    src: _Source, out: FloatArray, counted: tuple[Any, IntArray] | None = None
) -> FloatArray:
    """The column's finite values, sorted, in ``out`` (a view of it).

    A column with few distinct values (``counted``, or found so by a probe) is counted by
    hashing and laid out from its counts, which is several times cheaper than sorting.
    """
    if counted is None and _looks_low_cardinality(src):
        counted = _number_counts(src)
    if counted is not None:
        keys, counts = counted
        if len(keys) <= _COUNTED_MAX_DISTINCT:
            return _lay_out(np.asarray(keys, dtype=np.float64), counts, out)
    _fill_float64(src, out)
    out.sort()
    return st.finite_part(out)


def _looks_low_cardinality(src: _Source) -> bool:
    """Whether an evenly spread sample of the column has few distinct values."""
    if src.rows < 4 * _PROBE or src.cls not in _NUMBER_CLASSES:
        return False
    idx = np.linspace(0, src.rows - 1, _PROBE).astype(np.int64)
    values = src.values
    taken = values[idx] if isinstance(values, np.ndarray) else values.take(pa.array(idx))
    sample = np.empty(_PROBE)
    _fill_float64(_Source(src.cls, _PROBE, taken), sample)
    return np.unique(sample).size <= _PROBE // 8


def _number_counts(src: _Source) -> tuple[FloatArray, IntArray]:
    """The distinct finite values of a numeric column (float64, any order) and their counts."""
    values = src.values if not isinstance(src.values, np.ndarray) else pa.array(src.values)
    counted = pc.value_counts(values)
    keys = counted.field("values")
    if pa.types.is_dictionary(keys.type):
        keys = keys.dictionary_decode()
    as_float = np.asarray(
        pc.cast(keys, pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=np.float64
    )
    finite = np.isfinite(as_float)
    counts = np.asarray(counted.field("counts").to_numpy(), dtype=np.int64)
    return as_float[finite], counts[finite]


def _lay_out(keys: FloatArray, counts: IntArray, out: FloatArray) -> FloatArray:
    """The sorted array that has ``counts[i]`` copies of ``keys[i]``, written into ``out``."""
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    ends = np.cumsum(counts)
    total = int(ends[-1]) if ends.size else 0
    res = out[:total]
    if keys.size <= _LAY_OUT_BY_SLICES:
        start = 0
        for key, end in zip(keys.tolist(), ends.tolist(), strict=True):
            res[start:end] = key
            start = end
    else:
        res[:] = np.repeat(keys, counts)
    return res


def _category_counts(src: _Source) -> tuple[Any, IntArray]:
    """The distinct non-missing values (a pyarrow Array) of a column and their counts.

    Numbers are keyed as float64 (so 1 and 1.0 are one category), strings as ``string``.
    """
    values = src.values
    if src.cls == "null":
        return pa.array([], pa.float64()), np.zeros(0, dtype=np.int64)
    if isinstance(values, np.ndarray):
        values = pa.array(values)
    counted = pc.value_counts(values)
    keys = counted.field("values")
    counts = counted.field("counts")
    if pa.types.is_dictionary(keys.type):
        keys = keys.dictionary_decode()
    if src.cls in _NUMBER_CLASSES:
        keys = pc.cast(keys, pa.float64(), safe=False)
        keep = pc.and_(pc.is_valid(keys), pc.invert(pc.is_nan(keys)))
    else:
        if src.cls == "string" and not pa.types.is_string(keys.type):
            keys = pc.cast(keys, pa.string())
        keep = pc.is_valid(keys)
    keep = pc.fill_null(keep, False)
    keys = keys.filter(keep)
    out: IntArray = np.asarray(counts.filter(keep).to_numpy(), dtype=np.int64)
    return keys, out


# --- the prepared reference -----------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _RefColumn:
    kind: Kind
    cls: str
    rows: int
    valid: int
    # numeric
    sorted: FloatArray | None = None
    std: float = math.nan
    values: FloatArray | None = None  # distinct values, when at most 20 (else None)
    value_counts: IntArray | None = None
    # categorical
    keys: Any = None
    counts: IntArray | None = None


@dataclass(frozen=True, eq=False)
class PreparedReference:
    """A reference made ready for repeated comparisons: sorted numbers, category counts.

    Build it once with :func:`prepare_reference` and pass it to :func:`compute_drift` in
    place of the reference table for every window of current data.
    """

    columns: tuple[str, ...]
    rows: int
    skipped: tuple[str, ...]
    categorical: frozenset[str]
    numerical: frozenset[str]
    _prepared: Mapping[str, _RefColumn] = field(repr=False)

    def kind(self, column: str) -> Kind:
        return self._prepared[column].kind


def _prepare_column(
    name: str,
    src: _Source,
    options: DriftOptions,
    fallback_cls: str | None = None,
    scratch: _Scratch | None = None,
) -> _RefColumn:
    """One reference column made ready: sorted (in ``scratch`` if given) or counted."""
    cls = src.cls
    if cls.startswith("unsupported:"):
        raise InvalidInput(
            f"column {name!r} in reference has type {cls.split(':', 1)[1]}, "
            "which no drift test applies to"
        )
    infer_cls = fallback_cls if cls == "null" and fallback_cls else cls
    if name in options.numerical:
        if infer_cls not in (*_NUMBER_CLASSES, "bool", "null"):
            raise InvalidInput(f"column {name!r} is forced numerical but holds {infer_cls} values")
        return _numeric_ref(src, scratch)
    if name in options.categorical or infer_cls in ("bool", "string"):
        return _categorical_ref(src, cls)
    if infer_cls == "int":
        if cls == "null":
            return _categorical_ref(src, cls)
        keys, counts = _category_counts(src)
        if len(keys) <= INTEGER_CARDINALITY_LIMIT:
            return _RefColumn(
                "categorical", cls, src.rows, int(counts.sum()), keys=keys, counts=counts
            )
        return _numeric_ref(src, scratch, (keys.to_numpy(zero_copy_only=False), counts))
    return _numeric_ref(src, scratch)


def _numeric_ref(
    src: _Source, scratch: _Scratch | None, counted: tuple[Any, IntArray] | None = None
) -> _RefColumn:
    out = np.empty(src.rows) if scratch is None else scratch.get("reference", src.rows)
    values = _sorted_finite(src, out, counted)
    distinct = st.distinct_upto(values, st.VALUE_BINNING_MAX_UNIQUE)
    return _RefColumn(
        "numeric",
        src.cls,
        src.rows,
        values.size,
        sorted=values,
        std=st.standard_deviation(values) if values.size else math.nan,
        values=None if distinct is None else distinct[0],
        value_counts=None if distinct is None else distinct[1],
    )


def _categorical_ref(src: _Source, cls: str) -> _RefColumn:
    keys, counts = _category_counts(src)
    return _RefColumn("categorical", cls, src.rows, int(counts.sum()), keys=keys, counts=counts)


def prepare_reference(
    reference: TableLike,
    columns: Sequence[str] | None = None,
    options: DriftOptions = DriftOptions(),
) -> PreparedReference:
    """Sort and count the reference once, for many :func:`compute_drift` calls.

    ``columns`` None prepares every column whose type a test applies to (others are
    listed in ``skipped``). Only ``options.categorical``/``numerical`` and ``workers``
    matter here; :func:`compute_drift` refuses options that force other kinds.
    """
    table = _Table(reference, "reference")
    names, skipped = _select_columns(table, columns)
    rows = table.rows(names)
    if rows == 0:
        raise InvalidInput("reference is empty (0 rows)")
    prepared = _run_parallel(
        names,
        lambda name: _prepare_column(name, table.source(name), options),
        options.workers,
        lambda name: 0,
    )
    return PreparedReference(
        columns=tuple(names),
        rows=rows,
        skipped=tuple(skipped),
        categorical=options.categorical,
        numerical=options.numerical,
        _prepared=dict(zip(names, prepared, strict=True)),
    )


def _select_columns(table: _Table, columns: Sequence[str] | None) -> tuple[list[str], list[str]]:
    if columns is not None:
        if isinstance(columns, str):
            raise InvalidInput("columns must be a sequence of column names, not a string")
        names = list(dict.fromkeys(columns))
        missing = [c for c in names if c not in table.names]
        if missing:
            raise InvalidInput(f"column(s) missing in {table.where}: {_names(missing)}")
        if not names:
            raise InvalidInput("columns is empty: name at least one column")
        return names, []
    usable: list[str] = []
    skipped: list[str] = []
    for name in table.names:
        src_cls = _peek_class(table, name)
        (skipped if src_cls.startswith("unsupported:") else usable).append(name)
    if not usable:
        raise InvalidInput(f"{table.where} has no column that a drift test applies to")
    return usable, skipped


def _peek_class(table: _Table, name: str) -> str:
    """A column's class from its type alone where that is enough (no data pass)."""
    if isinstance(table.data, pa.Table):
        return _arrow_class(table.data.schema.field(name).type)
    values = table.raw(name)
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, np.dtype) and getattr(values, "ndim", 1) == 1:
        cls = _numpy_class(dtype)
        if cls is not None:
            return cls
    return table.source(name).cls


# --- the drift computation ----------------------------------------------------------------


def compute_drift(
    reference: TableLike | PreparedReference,
    current: TableLike,
    columns: Sequence[str] | None = None,
    options: DriftOptions = DriftOptions(),
) -> DriftReport:
    """Test every column for drift between ``reference`` and ``current``.

    ``reference`` is the training data (a pyarrow Table, a pandas DataFrame, a mapping of
    column name to array) or a :class:`PreparedReference` of it; ``current`` is the data
    to check, of the same kind. ``columns`` None compares every column of the reference
    that a test applies to; each must be in ``current``. Raises
    :class:`~modelyard.core.errors.InvalidInput` for a missing column, an empty side, a
    column whose types disagree, or a test or threshold that does not fit a column.
    """
    cur = _Table(current, "current")
    if isinstance(reference, PreparedReference):
        if (options.categorical, options.numerical) != (
            reference.categorical,
            reference.numerical,
        ):
            raise InvalidInput(
                "options force different column kinds (categorical/numerical) than the "
                "reference was prepared with; prepare it with the same options"
            )
        if isinstance(columns, str):
            raise InvalidInput("columns must be a sequence of column names, not a string")
        names = list(reference.columns if columns is None else dict.fromkeys(columns))
        unknown = [c for c in names if c not in reference.columns]
        if unknown:
            raise InvalidInput(f"column(s) missing in the prepared reference: {_names(unknown)}")
        if not names:
            raise InvalidInput("columns is empty: name at least one column")
        skipped: list[str] = list(reference.skipped) if columns is None else []
        ref_rows = reference.rows
        prepared: Mapping[str, _RefColumn] | None = reference._prepared
        ref_table: _Table | None = None
    else:
        ref_table = _Table(reference, "reference")
        names, skipped = _select_columns(ref_table, columns)
        ref_rows = ref_table.rows(names)
        prepared = None
    missing = [c for c in names if c not in cur.names]
    if missing:
        raise InvalidInput(f"column(s) missing in current: {_names(missing)}")
    if ref_rows == 0:
        raise InvalidInput("reference is empty (0 rows)")
    if cur.rows(names) == 0:
        raise InvalidInput("current is empty (0 rows)")

    scratch = _Scratch()

    def one(name: str) -> FeatureDrift:
        cur_src = cur.source(name)
        if prepared is not None:
            ref = prepared[name]
        else:
            assert ref_table is not None
            ref = _prepare_column(name, ref_table.source(name), options, cur_src.cls, scratch)
        return _column_drift(name, ref, cur_src, options, scratch)

    def cost(name: str) -> int:  # numeric columns first: they take longest
        if prepared is not None:
            return 0 if prepared[name].kind == "numeric" else 1
        assert ref_table is not None
        return 0 if _peek_class(ref_table, name) == "float" else 1

    features = tuple(_run_parallel(names, one, options.workers, cost))
    tested = [f for f in features if f.tested]
    share = sum(f.drifted for f in tested) / len(tested) if tested else 0.0
    return DriftReport(
        features=features,
        drift_share=share,
        dataset_drift=bool(tested) and share >= options.drift_share,
        share_threshold=options.drift_share,
        skipped=tuple(skipped),
    )


_T = TypeVar("_T")


def _run_parallel(
    names: list[str], fn: Callable[[str], _T], workers: int | None, cost: Callable[[str], int]
) -> list[_T]:
    n = min(len(names), workers or os.cpu_count() or 1)
    if n <= 1:
        return [fn(name) for name in names]
    order = sorted(range(len(names)), key=lambda i: cost(names[i]))
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="modelyard-drift") as pool:
        futures = {i: pool.submit(fn, names[i]) for i in order}
        return [futures[i].result() for i in range(len(names))]


def _compatible(name: str, ref_cls: str, cur_cls: str) -> None:
    if cur_cls.startswith("unsupported:"):
        raise InvalidInput(
            f"column {name!r} in current has type {cur_cls.split(':', 1)[1]}, "
            "which no drift test applies to"
        )
    if "null" in (ref_cls, cur_cls):
        return
    group = {"float": "number", "int": "number"}
    if group.get(ref_cls, ref_cls) != group.get(cur_cls, cur_cls):
        raise InvalidInput(
            f"column {name!r} holds {_describe(ref_cls)} values in reference but "
            f"{_describe(cur_cls)} values in current"
        )


def _describe(cls: str) -> str:
    return {"float": "numeric", "int": "integer", "bool": "boolean"}.get(cls, cls)


def _resolve(name: str, kind: Kind, options: DriftOptions) -> tuple[str | None, float | None]:
    """The requested test and threshold of a column (None: the default), Evidently's order."""
    test = options.stattest
    type_test = options.num_stattest if kind == "numeric" else options.cat_stattest
    if type_test is not None:
        test = type_test
    test = options.per_column.get(name, test)
    if name in options.per_column_threshold:
        threshold: float | None = options.per_column_threshold[name]
    else:
        type_threshold = options.num_threshold if kind == "numeric" else options.cat_threshold
        threshold = type_threshold if type_threshold is not None else options.threshold
    if test is not None:
        allowed = st.NUMERIC_TESTS if kind == "numeric" else st.CATEGORICAL_TESTS
        if test not in allowed:
            raise InvalidInput(
                f"stattest {test!r} does not apply to {kind} column {name!r}; "
                f"use one of {', '.join(t for t in st.TESTS if t in allowed)}"
            )
    return test, threshold


def _check_threshold(name: str, test: str, threshold: float) -> None:
    if test in st.P_VALUE_TESTS and not threshold < 1:
        raise InvalidInput(
            f"threshold {threshold!r} for column {name!r} is out of range: "
            f"{test} compares a p-value, so the threshold must be in (0, 1)"
        )
    if test == "jensenshannon" and threshold > 1:
        raise InvalidInput(
            f"threshold {threshold!r} for column {name!r} is out of range: "
            "the Jensen-Shannon distance lies in [0, 0.833], so the threshold must be in (0, 1]"
        )


def _default_test(kind: Kind, ref_valid: int, n_values: int) -> str:
    """Evidently's ``get_default_stattest``, for numeric and categorical columns."""
    if ref_valid <= SMALL_REFERENCE_MAX_ROWS:
        if kind == "numeric" and n_values > FEW_VALUES_MAX:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == "numeric" and n_values > FEW_VALUES_MAX:
        return "wasserstein"
    return "jensenshannon"


def _column_drift(
    name: str, ref: _RefColumn, cur_src: _Source, options: DriftOptions, scratch: _Scratch
) -> FeatureDrift:
    _compatible(name, ref.cls, cur_src.cls)
    if ref.cls == "null":  # no type in the reference: the current's type decides the kind
        ref = _prepare_column(
            name, _Source("null", ref.rows, pa.nulls(ref.rows)), options, cur_src.cls, scratch
        )
    requested, threshold = _resolve(name, ref.kind, options)
    if ref.kind == "numeric":
        v = _sorted_finite(cur_src, scratch.get("current", cur_src.rows))
        cur_valid = v.size
        n_values = _numeric_n_values(ref, v) if requested is None else 0
    else:
        cur_keys, cur_counts = _category_counts(cur_src)
        cur_valid = int(cur_counts.sum())
        keys, ref_c, cur_c = _align_categories(ref, cur_keys, cur_counts)
        n_values = len(keys)
    test = requested or _default_test(ref.kind, ref.valid, n_values)
    threshold = st.DEFAULT_THRESHOLDS[test] if threshold is None else threshold
    _check_threshold(name, test, threshold)

    def result(statistic: float, *, tested: bool = True, note: str | None = None) -> FeatureDrift:
        p_value = statistic if test in st.P_VALUE_TESTS and tested else None
        return FeatureDrift(
            column=name,
            kind=ref.kind,
            test=test,
            statistic=statistic,
            p_value=p_value,
            threshold=threshold,
            drifted=tested and drift_verdict(test, statistic, threshold),
            reference_rows=ref.rows,
            current_rows=cur_src.rows,
            missing_share_reference=_missing_share(ref.valid, ref.rows),
            missing_share_current=_missing_share(cur_valid, cur_src.rows),
            tested=tested,
            note=note,
        )

    empty = [side for side, n in (("reference", ref.valid), ("current", cur_valid)) if n == 0]
    if empty:
        return result(
            math.nan,
            tested=False,
            note=f"no non-missing values in {' and '.join(empty)}: not tested",
        )
    if ref.kind == "numeric":
        return result(_numeric_statistic(test, ref, v))
    return result(_categorical_statistic(test, keys, ref_c, cur_c))


def _missing_share(valid: int, rows: int) -> float:
    return (rows - valid) / rows if rows else 0.0


def _numeric_n_values(ref: _RefColumn, v: FloatArray) -> int:
    """Distinct values over both sides, exact up to :data:`FEW_VALUES_MAX` (more beyond)."""
    if ref.values is None or ref.values.size > FEW_VALUES_MAX:
        return FEW_VALUES_MAX + 1
    cur = st.distinct_upto(v, FEW_VALUES_MAX)
    if cur is None:
        return FEW_VALUES_MAX + 1
    return int(np.union1d(ref.values, cur[0]).size)


def _numeric_statistic(test: str, ref: _RefColumn, v: FloatArray) -> float:
    u = ref.sorted
    assert u is not None
    if test == "ks":
        return st.ks_pvalue(u, v, st.ks_statistic(u, v))
    if test == "wasserstein":
        return st.normed_wasserstein(u, v, ref.std)
    # Evidently bins by value up to 20 distinct reference values, else in Sturges bins;
    # chi-squared and z only come here by default, for columns of at most 5 values.
    if ref.values is not None:
        assert ref.value_counts is not None
        distinct = st.distinct_upto(v, _DISTINCT_BY_SEARCH)
        cur_values, cur_counts = st.run_lengths(v) if distinct is None else distinct
        _, ref_c, cur_c = st.align_value_counts(
            ref.values, ref.value_counts, cur_values, cur_counts
        )
        if test == "chisquare":
            return st.chisquare_pvalue(ref_c, cur_c)
        if test == "z":
            return st.z_pvalue(ref_c, cur_c, 0)  # keys are sorted: index 0 is the smallest
    else:
        ref_c, cur_c = st.sturges_counts(u, v)
    if test == "jensenshannon":
        return st.jensenshannon_distance(ref_c, cur_c)
    return st.psi(ref_c, cur_c)


def _align_categories(
    ref: _RefColumn, cur_keys: Any, cur_counts: IntArray
) -> tuple[Any, IntArray, IntArray]:
    """The union of both sides' categories, with each side's counts aligned to it."""
    ref_keys = ref.keys
    assert ref.counts is not None
    if len(cur_keys) == 0:
        return ref_keys, ref.counts, np.zeros(len(ref_keys), dtype=np.int64)
    if len(ref_keys) == 0:
        return cur_keys, np.zeros(len(cur_keys), dtype=np.int64), cur_counts
    if cur_keys.type != ref_keys.type:
        cur_keys = pc.cast(cur_keys, ref_keys.type)
    pos = np.asarray(
        pc.fill_null(pc.index_in(cur_keys, value_set=ref_keys), -1).to_numpy(), dtype=np.int64
    )
    new = pos < 0
    n_ref, n_new = len(ref_keys), int(new.sum())
    keys = pa.concat_arrays([ref_keys, cur_keys.filter(pa.array(new))]) if n_new else ref_keys
    ref_c = np.concatenate([ref.counts, np.zeros(n_new, dtype=np.int64)])
    cur_c = np.zeros(n_ref + n_new, dtype=np.int64)
    cur_c[pos[~new]] = cur_counts[~new]
    cur_c[n_ref:] = cur_counts[new]
    return keys, ref_c, cur_c


def _categorical_statistic(test: str, keys: Any, ref_c: IntArray, cur_c: IntArray) -> float:
    if test == "chisquare":
        return st.chisquare_pvalue(ref_c, cur_c)
    if test == "z":
        first = int(pc.sort_indices(keys)[0].as_py())  # Evidently: the smallest category
        return st.z_pvalue(ref_c, cur_c, first)
    if test == "jensenshannon":
        return st.jensenshannon_distance(ref_c, cur_c)
    return st.psi(ref_c, cur_c)


def _json_float(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _names(names: Any) -> str:
    return ", ".join(repr(n) for n in sorted(names))
