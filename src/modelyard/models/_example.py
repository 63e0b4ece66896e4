"""The input example, stored in the package as JSON (never pickled).

A table is stored as ``{"type": "dataframe", "columns": [...], "data": [[...], ...]}``, an
array as ``{"type": "ndarray", "dtype": "...", "data": [...]}``. Reading it back casts to
the signature's dtypes, so the example round-trips the way ``predict`` would take it.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

from modelyard.core.errors import InvalidInput
from modelyard.models._validate import to_table_or_array
from modelyard.models.signature import Array, ModelInput

EXAMPLE_FILE = "input_example.json"


def _default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_example(example: ModelInput) -> bytes:
    """The JSON bytes of an input example.

    Raises:
        InvalidInput: the example has values JSON cannot hold.
    """
    value = to_table_or_array(example)
    if isinstance(value, pd.DataFrame):
        doc: dict[str, object] = {
            "type": "dataframe",
            "columns": [str(c) for c in value.columns],
            "data": value.astype(object).where(value.notna(), None).to_numpy().tolist(),
        }
    else:
        doc = {"type": "ndarray", "dtype": str(value.dtype), "data": value.tolist()}
    try:
        return json.dumps(doc, default=_default).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"cannot store the input example as JSON: {exc}") from exc


def decode_example(data: bytes) -> pd.DataFrame | Array:
    """Read back what :func:`encode_example` wrote.

    Raises:
        InvalidInput: the bytes are not a stored example.
    """
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise InvalidInput(f"invalid {EXAMPLE_FILE}: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidInput(f"invalid {EXAMPLE_FILE}: expected an object")
    if doc.get("type") == "dataframe":
        return pd.DataFrame(doc.get("data"), columns=doc.get("columns"))
    if doc.get("type") == "ndarray":
        dtype = doc.get("dtype")
        return np.asarray(doc.get("data"), dtype=None if dtype in (None, "object") else dtype)
    raise InvalidInput(f"invalid {EXAMPLE_FILE}: unknown type {doc.get('type')!r}")
