"""Model signatures: what a model takes and returns, inferred from an input example.

A schema is either a list of named, typed columns (:class:`ColumnSchema`, inferred from
a DataFrame, a list of records or a dict of columns) or one tensor with a dtype and a
shape (:class:`TensorSchema`, inferred from an ndarray; ``-1`` marks a variable
dimension, always the batch dimension). Dtypes are normalized names: numpy names for
numbers and booleans (``float64``, ``int32``, ``bool``), ``string``, ``datetime`` and
``object`` (anything goes).

Checking data against a schema lives in :mod:`modelyard.models._validate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from modelyard.core.errors import InvalidInput

JSONValue: TypeAlias = str | int | float | bool | list["JSONValue"] | dict[str, "JSONValue"] | None
Array: TypeAlias = npt.NDArray[np.generic]
Records: TypeAlias = Sequence[Mapping[str, object]]
ModelInput: TypeAlias = pd.DataFrame | Array | Records | Mapping[str, object]
"""What ``predict`` accepts: a DataFrame, an ndarray, records, or a dict of columns."""

NUMERIC_DTYPES = frozenset(
    {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
    | {"float16", "float32", "float64"}
)
DTYPES = NUMERIC_DTYPES | {"bool", "string", "datetime", "object"}


@dataclass(frozen=True)
class ColumnSpec:
    """One named input or output column and its normalized dtype."""

    name: str
    dtype: str


@dataclass(frozen=True)
class ColumnSchema:
    """Tabular data: named columns, in order."""

    columns: tuple[ColumnSpec, ...]

    @property
    def names(self) -> list[str]:
        """The column names, in order."""
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class TensorSchema:
    """One n-dimensional array; ``-1`` in ``shape`` marks a variable dimension."""

    dtype: str
    shape: tuple[int, ...]


Schema: TypeAlias = ColumnSchema | TensorSchema


@dataclass(frozen=True)
class Signature:
    """A model's inputs and (when known) outputs."""

    inputs: Schema
    outputs: Schema | None = None

    def to_json(self) -> dict[str, JSONValue]:
        """The JSON form stored in ``modelyard.yaml``."""
        return {
            "inputs": schema_to_json(self.inputs),
            "outputs": None if self.outputs is None else schema_to_json(self.outputs),
        }

    @classmethod
    def from_json(cls, doc: object) -> Signature:
        """Parse :meth:`to_json` output.

        Raises:
            InvalidInput: ``doc`` is not a valid signature; the message names the part.
        """
        if not isinstance(doc, dict) or "inputs" not in doc:
            raise InvalidInput("invalid signature: expected an object with 'inputs'")
        outputs = doc.get("outputs")
        return cls(
            inputs=schema_from_json(doc["inputs"]),
            outputs=None if outputs is None else schema_from_json(outputs),
        )


def schema_to_json(schema: Schema) -> dict[str, JSONValue]:
    """The JSON form of one schema."""
    if isinstance(schema, TensorSchema):
        return {"type": "tensor", "dtype": schema.dtype, "shape": list(schema.shape)}
    columns: list[JSONValue] = [{"name": c.name, "dtype": c.dtype} for c in schema.columns]
    return {"type": "columns", "columns": columns}


def schema_from_json(doc: object) -> Schema:
    """Parse :func:`schema_to_json` output.

    Raises:
        InvalidInput: ``doc`` is not a valid schema.
    """
    if not isinstance(doc, dict):
        raise InvalidInput("invalid signature schema: expected an object")
    kind = doc.get("type")
    if kind == "tensor":
        dtype, shape = doc.get("dtype"), doc.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in shape
        ):
            raise InvalidInput(f"invalid tensor shape {shape!r}: expected a list of ints >= -1")
        return TensorSchema(dtype=_checked_dtype(dtype), shape=tuple(shape))
    if kind == "columns":
        raw = doc.get("columns")
        if not isinstance(raw, list):
            raise InvalidInput("invalid column schema: 'columns' must be a list")
        specs = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise InvalidInput(f"invalid column spec {item!r}: needs a string 'name'")
            specs.append(ColumnSpec(name=item["name"], dtype=_checked_dtype(item.get("dtype"))))
        if len({s.name for s in specs}) != len(specs):
            raise InvalidInput("invalid column schema: duplicate column names")
        return ColumnSchema(tuple(specs))
    raise InvalidInput(f"invalid signature schema type {kind!r}: expected 'tensor' or 'columns'")


def _checked_dtype(dtype: object) -> str:
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise InvalidInput(f"invalid dtype {dtype!r}: expected one of {sorted(DTYPES)}")
    return dtype


def dtype_name(values: pd.Series | Array) -> str:
    """The normalized dtype name of a column or array (see the module docstring)."""
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype):
        return "string"
    numpy_dtype = getattr(dtype, "numpy_dtype", dtype)  # pandas nullable Int64 and friends
    kind = getattr(numpy_dtype, "kind", "O")
    if kind == "b":
        return "bool"
    if kind in "iuf":
        return str(numpy_dtype.name)
    if kind in "US":
        return "string"
    if kind == "M" or isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime"
    if kind == "O":
        present = [v for v in np.asarray(values, dtype=object).ravel() if v is not None]
        if present and all(isinstance(v, str) for v in present):
            return "string"
    return "object"


def as_frame(data: Records | Mapping[str, object]) -> pd.DataFrame:
    """A DataFrame from records (a list of dicts) or a dict of columns.

    Raises:
        InvalidInput: the data has neither form.
    """
    try:
        if isinstance(data, Mapping):
            if all(np.ndim(v) == 0 for v in data.values()):  # type: ignore[arg-type]
                return pd.DataFrame([dict(data)])  # one record
            return pd.DataFrame({str(k): v for k, v in data.items()})
        return pd.DataFrame.from_records(list(data))
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot read the input as a table: {exc}") from exc


def infer_schema(example: object) -> Schema:
    """Infer a schema from an example value.

    Args:
        example: A DataFrame (columns), a Series or ndarray (tensor, batch dimension -1),
            a list of dicts or a dict of columns (columns), or a list of rows (tensor).

    Returns:
        The inferred schema.

    Raises:
        InvalidInput: the example has no supported form.
    """
    if isinstance(example, pd.DataFrame):
        return ColumnSchema(
            tuple(ColumnSpec(str(name), dtype_name(example[name])) for name in example.columns)
        )
    if isinstance(example, pd.Series):
        return TensorSchema(dtype=dtype_name(example), shape=(-1,))
    if isinstance(example, np.ndarray):
        if example.ndim == 0:
            raise InvalidInput("cannot infer a signature from a 0-dimensional array")
        return TensorSchema(dtype=dtype_name(example), shape=(-1, *example.shape[1:]))
    if isinstance(example, Mapping) or (
        isinstance(example, Sequence)
        and not isinstance(example, str | bytes)
        and example
        and all(isinstance(r, Mapping) for r in example)
    ):
        return infer_schema(as_frame(example))
    if isinstance(example, list | tuple):
        return infer_schema(np.asarray(example))
    raise InvalidInput(
        f"cannot infer a signature from {type(example).__name__}: expected a DataFrame, "
        "an ndarray, a list of dicts or a dict of columns"
    )
