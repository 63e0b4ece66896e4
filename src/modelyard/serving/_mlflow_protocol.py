"""The MLflow scoring protocol (``POST /invocations``) and ``POST /predict``.

Request bodies, as ``mlflow models serve`` takes them:

* ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`` (``index`` ignored);
* ``{"dataframe_records": [{column: value}, ...]}``;
* ``{"instances": [...]}`` — records, or rows of a tensor/positional columns;
* ``{"inputs": ...}`` — a ``{column: [values]}`` mapping, or like ``instances``.

The answer is ``{"predictions": [...]}``, as MLflow's scoring server writes it.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelyard.core.errors import InvalidInput
from modelyard.serving._inputs import (
    InputSpec,
    check_columns,
    from_column_values,
    from_records,
    from_rows,
)
from modelyard.serving._types import Array

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def decode_invocations(spec: InputSpec, body: object) -> Array:
    """An ``/invocations`` body as the model's array.

    Raises:
        InvalidInput: the body has none of the accepted forms, or does not fit the
            signature (the message names the column or dimension).
    """
    if type(body) is dict and len(body) == 1 and "dataframe_split" in body:
        return _from_split(spec, body["dataframe_split"])  # the usual request, checked first
    if not isinstance(body, Mapping):
        raise InvalidInput(f"the request body must be a JSON object with one of {MLFLOW_KEYS}")
    keys = [k for k in MLFLOW_KEYS if k in body]
    if len(keys) != 1:
        raise InvalidInput(
            f"the request body must have exactly one of {list(MLFLOW_KEYS)}, got {sorted(body)}"
        )
    key = keys[0]
    value = body[key]
    if key == "dataframe_split":
        return _from_split(spec, value)
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise InvalidInput("'dataframe_records' must be a list of records")
        return from_records(spec, value)
    if key == "inputs" and isinstance(value, Mapping):
        if spec.names is None:
            raise InvalidInput("this model takes a tensor: send 'inputs' as a (nested) list")
        return from_column_values(spec, value)
    return decode_instances(spec, value, key)


def decode_instances(spec: InputSpec, value: object, key: str = "instances") -> Array:
    """A list of records or of rows (``/predict``'s ``instances``) as the model's array.

    Raises:
        InvalidInput: not a non-empty list, or the rows do not fit the signature.
    """
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"'{key}' must be a non-empty list")
    if isinstance(value[0], Mapping):
        return from_records(spec, value)
    return from_rows(spec, value)


def decode_predict(spec: InputSpec, body: object) -> Array:
    """A ``/predict`` body, ``{"instances": [...]}``, as the model's array.

    Raises:
        InvalidInput: the body has no ``instances`` list, or it does not fit.
    """
    if not isinstance(body, Mapping) or "instances" not in body:
        raise InvalidInput('the request body must be {"instances": [...]}')
    return decode_instances(spec, body["instances"])


def _from_split(spec: InputSpec, value: object) -> Array:
    if not isinstance(value, Mapping) or type(data := value.get("data")) is not list:
        raise InvalidInput("'dataframe_split' must be an object with 'columns' and 'data'")
    columns = value.get("columns")
    if columns == spec.name_list or spec.names is None or columns is None:
        return from_rows(spec, data)
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput("'dataframe_split.columns' must be a list of column names")
    order = check_columns(spec, columns)
    if order == list(range(len(order))):
        return from_rows(spec, data)
    if not all(isinstance(row, list) and len(row) == len(columns) for row in data):
        raise InvalidInput(f"every row of 'dataframe_split.data' must have {len(columns)} values")
    return from_rows(spec, [[row[i] for i in order] for row in data])


def encode_predictions(prediction: Array) -> dict[str, object]:
    """The ``{"predictions": [...]}`` answer."""
    return {"predictions": prediction.tolist()}


def generic_input(body: object) -> object:
    """For models without a numeric signature: the payload handed to
    :meth:`modelyard.models.LoadedModel.predict` (records, rows or a dict of columns).

    Raises:
        InvalidInput: the body has none of the accepted forms.
    """
    if not isinstance(body, Mapping):
        raise InvalidInput(f"the request body must be a JSON object with one of {MLFLOW_KEYS}")
    keys = [k for k in MLFLOW_KEYS if k in body]
    if len(keys) != 1:
        raise InvalidInput(f"the request body must have exactly one of {list(MLFLOW_KEYS)}")
    value = body[keys[0]]
    if keys[0] == "dataframe_split":
        if not isinstance(value, Mapping) or not isinstance(value.get("data"), list):
            raise InvalidInput("'dataframe_split' must be an object with 'columns' and 'data'")
        columns = value.get("columns")
        if isinstance(columns, list):
            return [dict(zip(columns, row, strict=False)) for row in value["data"]]
        return value["data"]
    return value
