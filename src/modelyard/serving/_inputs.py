"""Turning decoded JSON into the numpy array a model takes, checked against its signature.

The serving fast path: a model whose input signature is all-numeric columns, or one
numeric tensor, gets a 2-D (or n-D) ndarray built straight from the JSON values — no
pandas on the request path. Every error is an :class:`InvalidInput` naming the column or
dimension, which the app answers with 400.

Columns are read into one array of the columns' common numpy type (``float64`` when
they mix integers and floats); integer columns must hold whole numbers in range, and
null or NaN values are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from modelyard.core.errors import InvalidInput
from modelyard.models import ColumnSchema, Signature, TensorSchema
from modelyard.serving._types import Array

_ALL = np.logical_and.reduce  # ndarray.all() without its Python-level wrapper
_NUMERIC = frozenset(
    {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
    | {"float16", "float32", "float64", "bool"}
)


@dataclass(frozen=True)
class InputSpec:
    """What the fast path needs to know about a model's input.

    Attributes:
        names: Column names in signature order, or None for a tensor model.
        column_dtypes: Each column's dtype name (columns only).
        dtype: The numpy dtype of the array handed to the model.
        shape: The tensor shape (``-1`` = any size); ``(-1, n_columns)`` for columns.
    """

    names: tuple[str, ...] | None
    column_dtypes: tuple[str, ...]
    dtype: np.dtype[np.generic]
    shape: tuple[int, ...]

    @cached_property
    def name_list(self) -> list[str] | None:
        """The column names as a list, to compare a request's ``columns`` with at C speed."""
        return list(self.names) if self.names is not None else None

    @cached_property
    def integer_columns(self) -> tuple[int, ...]:
        """Positions of the integer columns (they must hold whole numbers)."""
        return tuple(j for j, d in enumerate(self.column_dtypes) if d[0] in "iu")

    @property
    def width(self) -> int:
        """The number of columns (columns) or the size of dimension 1 (tensors)."""
        return len(self.names) if self.names is not None else _dim1(self.shape)


def _dim1(shape: tuple[int, ...]) -> int:
    return shape[1] if len(shape) > 1 else -1


def input_spec(signature: Signature | None) -> InputSpec | None:
    """The fast-path spec for a signature, or None when the model needs the generic path
    (no signature, or non-numeric columns/tensors)."""
    if signature is None:
        return None
    inputs = signature.inputs
    if isinstance(inputs, TensorSchema):
        if inputs.dtype not in _NUMERIC or not inputs.shape:
            return None
        return InputSpec(None, (), np.dtype(inputs.dtype), inputs.shape)
    assert isinstance(inputs, ColumnSchema)
    dtypes = tuple(c.dtype for c in inputs.columns)
    if not dtypes or any(d not in _NUMERIC for d in dtypes):
        return None
    common = np.result_type(*(np.dtype(d) for d in dtypes))
    return InputSpec(tuple(inputs.names), dtypes, common, (-1, len(dtypes)))


def check_columns(spec: InputSpec, given: Sequence[str]) -> list[int]:
    """Positions of the signature's columns in ``given``; missing/extra columns refused."""
    assert spec.names is not None
    index = {name: i for i, name in enumerate(given)}
    if len(index) != len(given):
        raise InvalidInput("duplicate column names in the input")
    missing = [n for n in spec.names if n not in index]
    if missing:
        raise InvalidInput(
            f"missing column {missing[0]!r}; the model expects columns {list(spec.names)!r}"
        )
    if len(index) != len(spec.names):
        extra = [g for g in given if g not in set(spec.names)]
        raise InvalidInput(
            f"unexpected column {extra[0]!r}; the model expects columns {list(spec.names)!r}"
        )
    return [index[n] for n in spec.names]


def from_records(spec: InputSpec, records: Sequence[object]) -> Array:
    """A list of ``{column: value}`` records as the model's array."""
    if not records:
        raise InvalidInput("the input has no rows")
    names = spec.names
    if names is None:
        raise InvalidInput("this model takes a tensor, not records with named columns")
    rows = []
    for record in records:
        if not isinstance(record, Mapping):
            raise InvalidInput("every record must be an object of {column: value}")
        if len(record) != len(names):
            check_columns(spec, list(record))
        try:
            rows.append([record[n] for n in names])
        except KeyError:
            check_columns(spec, list(record))
            raise
    return from_rows(spec, rows)


def from_rows(spec: InputSpec, rows: object, *, what: str = "the input") -> Array:
    """Positional rows (nested lists) as the model's array, its shape checked."""
    finite = _finite_numbers(rows)
    if not finite:  # the usual rows are all numbers: the search for text runs only here
        _refuse_text(spec, rows)
    array = _to_array(spec, rows)
    check_shape(spec, array.shape, what)
    return _checked(spec, array, known_finite=finite)


def from_column_values(spec: InputSpec, columns: Mapping[str, object]) -> Array:
    """A ``{column: [values]}`` mapping (scalars for one row) as the model's array."""
    order = check_columns(spec, list(columns))
    values = list(columns.values())
    cols = [
        np.atleast_1d(_to_array(spec, values[i], column=spec.names[j]))  # type: ignore[index]
        for j, i in enumerate(order)
    ]
    for j, i in enumerate(order):
        if _holds_text(values[i]):
            raise InvalidInput(f"column {spec.names[j]!r} has text where a number is expected")  # type: ignore[index]
    lengths = {c.shape[0] for c in cols}
    if len(lengths) != 1 or any(c.ndim != 1 for c in cols):
        raise InvalidInput("every column must be a flat list of values of the same length")
    return _checked(spec, np.stack(cols, axis=1))


def check_shape(spec: InputSpec, shape: tuple[int, ...], what: str) -> None:
    """Refuse an array shape that does not fit the spec, naming the dimension."""
    want = spec.shape
    if (
        len(shape) == 2 == len(want)
        and shape[0]
        and want[0] in (-1, shape[0])
        and want[1] in (-1, shape[1])
    ):
        return  # the common case (rows of columns), checked without a loop
    if len(shape) != len(want):
        raise InvalidInput(
            f"{what} must have {len(want)} dimension(s) (shape {list(want)}), got shape "
            f"{list(shape)}"
        )
    if shape[0] == 0:
        raise InvalidInput(f"{what} has no rows")
    for axis, (w, g) in enumerate(zip(want, shape, strict=True)):
        if w != -1 and w != g:
            names = f" (columns {', '.join(spec.names)})" if spec.names is not None else ""
            raise InvalidInput(f"dimension {axis} of {what} has size {g}, expected {w}{names}")


def _to_array(spec: InputSpec, values: object, column: str | None = None) -> Array:
    target = np.float64 if spec.dtype.kind in "iub" else spec.dtype
    try:
        return np.asarray(values, dtype=target)
    except (ValueError, TypeError, OverflowError) as exc:
        where = f"column {column!r}" if column else _bad_value_place(spec, values)
        raise InvalidInput(f"{where} has a value that is not a number ({exc})") from exc


def _not_a_number(value: object) -> bool:
    return not isinstance(value, int | float) or isinstance(value, bool)


def _bad_value_place(
    spec: InputSpec, values: object, bad: Callable[[object], bool] = _not_a_number
) -> str:
    """Where the first value that is ``bad`` is: ``column 'x'``, or ``the input``."""
    if spec.names is not None and isinstance(values, list):
        for row in values:
            if isinstance(row, list) and len(row) == len(spec.names):
                for name, value in zip(spec.names, row, strict=True):
                    if bad(value):
                        return f"column {name!r}"
    return "the input"


def _holds_text(values: object) -> bool:
    """Whether a string hides anywhere in (nested lists of) values."""
    if isinstance(values, str):
        return True
    return isinstance(values, list) and any(map(_holds_text, values))


def _refuse_text(spec: InputSpec, rows: object) -> None:
    """Refuse text in numeric input, as MLflow's scoring server does; NumPy alone would
    read ``"0.5"`` as 0.5."""
    if _holds_text(rows):
        place = _bad_value_place(spec, rows, lambda value: isinstance(value, str))
        raise InvalidInput(f"{place} has text where a number is expected")


def _finite_numbers(rows: object) -> bool:
    """True only if ``rows`` (a list of lists) holds nothing but finite numbers.

    A shortcut for the usual small request: summing in Python costs ~0.3 µs where NumPy's
    ``isfinite`` and its reduction cost ~1.8 µs. Sound, not complete: a NaN or an
    infinity makes the sum NaN or infinite, and anything that is not a number raises
    TypeError, so True proves every value finite; False (those, or a sum that overflows)
    only means that the exact check must run.
    """
    if type(rows) is not list:
        return False
    try:
        total = sum(map(sum, rows))
    except TypeError:
        return False
    return bool(total - total == 0)


def _checked(spec: InputSpec, array: Array, *, known_finite: bool = False) -> Array:
    """Refuse nulls/NaN and non-whole values for integer columns; cast to the spec."""
    if array.dtype.kind == "f" and not known_finite and not _ALL(np.isfinite(array), axis=None):
        bad = np.argwhere(~np.isfinite(array))[0]
        place = (
            f"column {spec.names[int(bad[1])]!r}"
            if spec.names is not None and array.ndim == 2
            else f"element {bad.tolist()}"
        )
        raise InvalidInput(f"{place} has a null, NaN or infinite value")
    if spec.dtype == array.dtype:
        if spec.integer_columns and spec.dtype.kind == "f" and array.ndim == 2:
            _check_integer_columns(spec, array)
        return array
    if spec.dtype.kind in "iu":
        if array.dtype.kind == "f" and not bool(np.all(np.mod(array, 1) == 0)):
            raise InvalidInput(_int_message(spec, array, "values that are not whole numbers"))
        info = np.iinfo(spec.dtype)  # type: ignore[type-var]
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise InvalidInput(_int_message(spec, array, "values out of range"))
    return array.astype(spec.dtype)


def _check_integer_columns(spec: InputSpec, array: Array) -> None:
    """Integer columns read into a float array (mixed with float columns) must be whole."""
    for j in spec.integer_columns:
        dtype = spec.column_dtypes[j]
        if not bool(np.all(np.mod(array[:, j], 1) == 0)):
            name = spec.names[j] if spec.names is not None else str(j)
            raise InvalidInput(
                f"column {name!r} has values that are not whole numbers; expected {dtype}"
            )


def _int_message(spec: InputSpec, array: Array, reason: str) -> str:
    if spec.names is not None and array.ndim == 2:
        for j, (name, dtype) in enumerate(zip(spec.names, spec.column_dtypes, strict=True)):
            column = array[:, j]
            if np.dtype(dtype).kind in "iu" and not bool(np.all(np.mod(column, 1) == 0)):
                return f"column {name!r} has {reason}; expected {dtype}"
    return f"the input has {reason}; expected {spec.dtype.name}"
