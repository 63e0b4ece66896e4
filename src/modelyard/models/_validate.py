"""Checking prediction inputs against a signature, and casting them where that is safe.

Safe casts: integers and booleans to wider or floating types; floats to narrower floats;
floats to integers only when every value is a whole number; an object column to numbers
when every value parses as one. Anything else is refused with an :class:`InvalidInput`
naming the column or dimension. Columns the signature does not list are dropped, and
the rest are put in signature order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from modelyard.core.errors import InvalidInput
from modelyard.models.signature import (
    NUMERIC_DTYPES,
    Array,
    ColumnSchema,
    ModelInput,
    Schema,
    TensorSchema,
    as_frame,
    dtype_name,
)


def to_table_or_array(data: ModelInput) -> pd.DataFrame | Array:
    """Bring any accepted input form to a DataFrame or an ndarray, without a schema.

    Raises:
        InvalidInput: ``data`` has none of the accepted forms.
    """
    if isinstance(data, pd.DataFrame | np.ndarray):
        return data
    if isinstance(data, Mapping):
        return as_frame(data)
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        if data and all(isinstance(r, Mapping) for r in data):
            return as_frame(data)
        try:
            return np.asarray(data)
        except ValueError as exc:
            raise InvalidInput(f"cannot read the input as an array: {exc}") from exc
    raise InvalidInput(
        f"unsupported input type {type(data).__name__}: expected a pandas DataFrame, a "
        "numpy ndarray, a list of records (dicts) or a dict of columns"
    )


def conform(data: ModelInput, schema: Schema | None) -> pd.DataFrame | Array:
    """Validate ``data`` against ``schema`` and return it in the form the model takes.

    Args:
        data: The caller's input.
        schema: The model's input schema; with None, the data is only normalized.

    Returns:
        A DataFrame with exactly the schema's columns, in order and cast (for a column
        schema), or an ndarray with the schema's dtype (for a tensor schema).

    Raises:
        InvalidInput: a column is missing, a dtype cannot be cast safely, or a dimension
            has the wrong size; the message names the column or dimension.
    """
    value = to_table_or_array(data)
    if schema is None:
        return value
    if isinstance(schema, TensorSchema):
        array = value.to_numpy() if isinstance(value, pd.DataFrame) else value
        return _conform_tensor(array, schema)
    return _conform_columns(value, schema)


def _conform_columns(value: pd.DataFrame | Array, schema: ColumnSchema) -> pd.DataFrame:
    if isinstance(value, np.ndarray):
        if value.ndim != 2 or value.shape[1] != len(schema.columns):
            got = f"shape {list(value.shape)}"
            raise InvalidInput(
                f"dimension 1 of the input must have size {len(schema.columns)} (columns "
                f"{', '.join(schema.names)}), got an array of {got}"
            )
        value = pd.DataFrame(value, columns=schema.names)
    by_name = {str(label): label for label in value.columns}
    missing = [name for name in schema.names if name not in by_name]
    if missing:
        raise InvalidInput(
            f"missing column {missing[0]!r}"
            + (f" (and {len(missing) - 1} more: {missing[1:]!r})" if len(missing) > 1 else "")
            + f"; the model expects columns {schema.names!r}"
        )
    out = {
        by_name[spec.name]: _cast(value[by_name[spec.name]], spec.dtype, f"column {spec.name!r}")
        for spec in schema.columns
    }
    return pd.DataFrame(out, index=value.index)


def _conform_tensor(array: Array, schema: TensorSchema) -> Array:
    if array.ndim != len(schema.shape):
        raise InvalidInput(
            f"expected a {len(schema.shape)}-dimensional input (shape {list(schema.shape)}), "
            f"got {array.ndim} dimension(s) (shape {list(array.shape)})"
        )
    for axis, (want, got) in enumerate(zip(schema.shape, array.shape, strict=True)):
        if want != -1 and want != got:
            raise InvalidInput(
                f"dimension {axis} of the input has size {got}, expected {want} "
                f"(shape {list(schema.shape)})"
            )
    cast = _cast(pd.Series(array.ravel()), schema.dtype, "the input tensor")
    return np.asarray(cast.to_numpy()).reshape(array.shape)


def _cast(column: pd.Series, expected: str, what: str) -> pd.Series:
    actual = dtype_name(column)
    if expected == "object" or actual == expected:
        return column
    if expected in NUMERIC_DTYPES and actual in {"object", "string"}:
        try:
            column = pd.to_numeric(column)
        except (ValueError, TypeError) as exc:
            raise _cast_error(what, actual, expected, "values that are not numbers") from exc
        actual = dtype_name(column)
    if expected in NUMERIC_DTYPES and (actual in NUMERIC_DTYPES or actual == "bool"):
        return _cast_number(column, actual, expected, what)
    if expected == "string" and actual == "object":
        raise _cast_error(what, actual, expected, "values that are not strings")
    raise _cast_error(what, actual, expected, None)


def _cast_number(column: pd.Series, actual: str, expected: str, what: str) -> pd.Series:
    values = column.to_numpy()
    if np.dtype(expected).kind in "iu":
        if np.dtype(actual).kind == "f" and not _all_whole(values):
            raise _cast_error(what, actual, expected, "values that are not whole numbers")
        info = np.iinfo(np.dtype(expected))
        if values.size and (values.min() < info.min or values.max() > info.max):
            raise _cast_error(what, actual, expected, "values out of range")
    elif not np.can_cast(np.dtype(actual), np.dtype(expected), casting="same_kind"):
        raise _cast_error(what, actual, expected, None)
    return column.astype(np.dtype(expected))


def _all_whole(values: Array) -> bool:
    floats = values.astype(np.float64)
    return bool(np.all(np.isfinite(floats)) and np.all(np.mod(floats, 1) == 0))


def _cast_error(what: str, actual: str, expected: str, reason: str | None) -> InvalidInput:
    detail = f" ({reason})" if reason else ""
    return InvalidInput(f"{what} has dtype {actual}{detail}, which cannot be cast to {expected}")
