"""Open Inference Protocol v2 (KServe / Triton REST) JSON codec.

A column model takes one input tensor per column (named like the column, shape ``[n]`` or
``[n, 1]``) or, as a convenience, a single 2-D tensor of shape ``[n, n_columns]``. A
tensor model takes one tensor named ``input-0``. The prediction is returned as one
tensor ``output-0`` (or one tensor per output column when the output signature has named
columns and the prediction is 2-D with that many columns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from modelyard.core.errors import InvalidInput
from modelyard.models import ColumnSchema, Signature, TensorSchema
from modelyard.serving._inputs import InputSpec, check_columns, check_shape, from_rows
from modelyard.serving._types import Array

TENSOR_INPUT = "input-0"
TENSOR_OUTPUT = "output-0"

_TO_OIP = {
    "bool": "BOOL",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
}
_NUMERIC_OIP = frozenset(_TO_OIP.values())


def oip_datatype(dtype: str) -> str:
    """The OIP datatype of a normalized dtype name (strings and objects are BYTES)."""
    return _TO_OIP.get(dtype, "BYTES")


def tensor_metadata(signature: Signature | None) -> tuple[list[object], list[object]]:
    """The ``inputs`` and ``outputs`` of the model metadata response."""
    if signature is None:
        return [], []
    ins = _schema_tensors(signature.inputs, TENSOR_INPUT)
    outs = [] if signature.outputs is None else _schema_tensors(signature.outputs, TENSOR_OUTPUT)
    return ins, outs


def _schema_tensors(schema: ColumnSchema | TensorSchema, tensor_name: str) -> list[object]:
    if isinstance(schema, TensorSchema):
        return [
            {"name": tensor_name, "datatype": oip_datatype(schema.dtype), "shape": [*schema.shape]}
        ]
    return [
        {"name": c.name, "datatype": oip_datatype(c.dtype), "shape": [-1]} for c in schema.columns
    ]


def decode_infer(spec: InputSpec, body: object) -> tuple[Array, str | None, list[str] | None]:
    """An infer request body as the model's array.

    Returns:
        The array, the request ``id`` (or None) and the requested output names (or None).

    Raises:
        InvalidInput: the body is malformed or does not fit the signature; the message
            names the tensor, column or dimension.
    """
    if not isinstance(body, Mapping):
        raise InvalidInput("the request body must be a JSON object with 'inputs'")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("'inputs' must be a non-empty list of tensors")
    tensors = [_tensor(t) for t in inputs]
    request_id = body.get("id")
    outputs = _requested_outputs(body.get("outputs"))
    rid = request_id if isinstance(request_id, str) else None
    if spec.names is None or (len(tensors) == 1 and len(tensors[0][1]) == 2):
        if len(tensors) != 1:
            raise InvalidInput(f"this model takes one input tensor, got {len(tensors)}")
        name, shape, data = tensors[0]
        return _reshaped(spec, name, shape, data), rid, outputs
    order = check_columns(spec, [t[0] for t in tensors])
    columns = []
    for j, i in enumerate(order):
        name, shape, data = tensors[i]
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise InvalidInput(f"input {name!r} must have shape [n] or [n, 1], got {shape}")
        columns.append(_flat(name, shape, data))
        if j and len(columns[-1]) != len(columns[0]):
            raise InvalidInput(
                f"input {name!r} has {len(columns[-1])} rows, {tensors[order[0]][0]!r} "
                f"has {len(columns[0])}"
            )
    rows = list(zip(*columns, strict=True))
    return from_rows(spec, rows), rid, outputs


def _tensor(item: object) -> tuple[str, list[int], object]:
    if not isinstance(item, Mapping):
        raise InvalidInput("every input must be an object with name, shape, datatype, data")
    name, shape, datatype = item.get("name"), item.get("shape"), item.get("datatype")
    if not isinstance(name, str):
        raise InvalidInput("every input needs a string 'name'")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InvalidInput(f"input {name!r}: 'shape' must be a list of non-negative ints")
    if datatype not in _NUMERIC_OIP:
        raise InvalidInput(
            f"input {name!r}: datatype {datatype!r} is not supported by this model "
            f"(numeric: {sorted(_NUMERIC_OIP)})"
        )
    if "data" not in item:
        raise InvalidInput(f"input {name!r} has no 'data' (binary tensors are not supported)")
    return name, shape, item["data"]


def _flat(name: str, shape: list[int], data: object) -> list[object]:
    values = data if isinstance(data, list) else [data]
    if values and isinstance(values[0], list):
        values = np.asarray(values, dtype=object).ravel().tolist()
    size = int(np.prod(shape)) if shape else 1
    if len(values) != size:
        raise InvalidInput(
            f"input {name!r} has {len(values)} values, its shape {shape} needs {size}"
        )
    return values


def _reshaped(spec: InputSpec, name: str, shape: list[int], data: object) -> Array:
    values = _flat(name, shape, data)
    array = from_rows(_flat_spec(spec), values, what=f"input {name!r}")
    array = array.reshape(shape)
    check_shape(spec, tuple(shape), f"input {name!r}")
    return array


def _flat_spec(spec: InputSpec) -> InputSpec:
    return InputSpec(None, spec.column_dtypes, spec.dtype, (-1,))


def _requested_outputs(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(o, Mapping) and isinstance(o.get("name"), str) for o in value
    ):
        raise InvalidInput("'outputs' must be a list of objects with a 'name'")
    return [str(o["name"]) for o in value]


def encode_outputs(
    prediction: Array, signature: Signature | None, requested: Sequence[str] | None
) -> list[object]:
    """The ``outputs`` list of an infer response.

    Raises:
        InvalidInput: a requested output name is not one of the model's outputs.
    """
    out_schema = None if signature is None else signature.outputs
    if (
        isinstance(out_schema, ColumnSchema)
        and prediction.ndim == 2
        and prediction.shape[1] == len(out_schema.columns)
    ):
        tensors = [_encode(c.name, prediction[:, j]) for j, c in enumerate(out_schema.columns)]
    else:
        tensors = [_encode(TENSOR_OUTPUT, prediction)]
    if requested is None:
        return list(tensors)
    by_name = {t["name"]: t for t in tensors}
    unknown = [r for r in requested if r not in by_name]
    if unknown:
        raise InvalidInput(f"unknown output {unknown[0]!r}; the model has {list(by_name)}")
    return [by_name[r] for r in requested]


def _encode(name: str, values: Array) -> dict[str, object]:
    kind = values.dtype.kind
    datatype = _TO_OIP.get(values.dtype.name, "BYTES") if kind in "biuf" else "BYTES"
    data = values.ravel().tolist()
    if datatype == "BYTES":
        data = [v if isinstance(v, str) else str(v) for v in data]
    return {"name": name, "datatype": datatype, "shape": list(values.shape), "data": data}
