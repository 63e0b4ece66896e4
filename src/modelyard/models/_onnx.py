"""The ``onnx`` flavor: an ONNX model run by onnxruntime on the CPU.

Inputs are built from the session's declared inputs: a model with one input gets the
whole batch as one 2-D array (a DataFrame's columns in signature order) cast to the
input's element type; a model with one input per column (skl2onnx's convention for
DataFrames) gets each column as an ``(n, 1)`` array. ``predict`` returns one output:
the one named ``label`` when there is one (classifiers converted with skl2onnx),
otherwise the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from modelyard.core.errors import InvalidInput
from modelyard.models._base import Flavor, Predictor, SavedFlavor, as_output
from modelyard.models.manifest import VerifiedFiles
from modelyard.models.signature import (
    Array,
    ColumnSchema,
    ColumnSpec,
    JSONValue,
    Schema,
    Signature,
    TensorSchema,
)

MODEL_FILE = "model.onnx"
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "string",
}


def _is_onnx_model(model: object) -> bool:
    return type(model).__name__ == "ModelProto" and hasattr(model, "SerializeToString")


def _session(model: bytes) -> object:
    try:
        import onnxruntime  # type: ignore[import-untyped]
    except ImportError as exc:
        raise InvalidInput("the onnx flavor needs onnxruntime: install modelyard[onnx]") from exc
    try:
        return onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own unexported exception types
        raise InvalidInput(f"onnxruntime cannot load the model: {exc}") from exc


def _dtype(ort_type: str) -> str:
    return _ORT_DTYPES.get(ort_type, "object")


def _shape(raw: list[object]) -> tuple[int, ...]:
    dims = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in raw)
    return (-1, *dims[1:]) if dims else dims


def _output_name(session: object) -> str:
    names = [o.name for o in session.get_outputs()]  # type: ignore[attr-defined]
    return "label" if "label" in names else str(names[0])


def _graph_signature(session: object, output: str) -> Signature:
    ins = session.get_inputs()  # type: ignore[attr-defined]
    inputs: Schema
    if len(ins) == 1:
        inputs = TensorSchema(_dtype(ins[0].type), _shape(ins[0].shape))
    else:
        inputs = ColumnSchema(tuple(ColumnSpec(i.name, _dtype(i.type)) for i in ins))
    out = next(o for o in session.get_outputs() if o.name == output)  # type: ignore[attr-defined]
    return Signature(inputs, TensorSchema(_dtype(out.type), _shape(out.shape)))


class OnnxPredictor:
    """Runs an onnxruntime session; see the module docstring for inputs and outputs."""

    def __init__(self, session: object, output: str, outputs: Schema | None) -> None:
        self.session = session
        self.output = output
        self.outputs = outputs

    def _feeds(self, data: pd.DataFrame | Array) -> dict[str, Array]:
        ins = self.session.get_inputs()  # type: ignore[attr-defined]
        if len(ins) == 1:
            array = data.to_numpy() if isinstance(data, pd.DataFrame) else np.asarray(data)
            return {ins[0].name: _as_type(array, ins[0].type)}
        if not isinstance(data, pd.DataFrame):
            raise InvalidInput(
                f"this ONNX model takes named inputs {[i.name for i in ins]}: send columns"
            )
        feeds = {}
        for i in ins:
            if i.name not in data.columns:
                raise InvalidInput(f"missing column {i.name!r}")
            feeds[i.name] = _as_type(data[i.name].to_numpy().reshape(-1, 1), i.type)
        return feeds

    def predict(self, data: pd.DataFrame | Array) -> Array:
        """Run the session and return the chosen output."""
        result = self.session.run([self.output], self._feeds(data))  # type: ignore[attr-defined]
        return as_output(result[0], self.outputs)


def _as_type(array: Array, ort_type: str) -> Array:
    dtype = _dtype(ort_type)
    if dtype == "string":
        return array.astype(object)
    if dtype == "object":
        return array
    return array.astype(dtype, copy=False)


class OnnxFlavor(Flavor):
    """Stores the serialized ONNX model as ``model.onnx``."""

    name: ClassVar[str] = "onnx"
    distributions: ClassVar[tuple[str, ...]] = ("onnxruntime", "onnx", "numpy", "pandas")

    def accepts(self, model: object) -> bool:
        return _is_onnx_model(model) or isinstance(model, bytes | bytearray)

    def save(self, model: object, dest: Path) -> SavedFlavor:
        if _is_onnx_model(model):
            data = bytes(model.SerializeToString())  # type: ignore[attr-defined]
        elif isinstance(model, bytes | bytearray):
            data = bytes(model)
        else:
            raise InvalidInput(
                f"flavor 'onnx' needs an onnx ModelProto or its bytes, got {type(model).__name__}"
            )
        session = _session(data)  # refuse what onnxruntime cannot run, at save time
        output = _output_name(session)
        (dest / MODEL_FILE).write_bytes(data)
        return SavedFlavor(
            config={"model_file": MODEL_FILE, "output": output},
            signature=_graph_signature(session, output),
        )

    def load(self, files: VerifiedFiles, config: Mapping[str, JSONValue]) -> Predictor:
        model_file = config.get("model_file", MODEL_FILE)
        if not isinstance(model_file, str):
            raise InvalidInput("onnx flavor: 'model_file' must be a string")
        session = _session(files.read_bytes(model_file))
        output = config.get("output")
        signature = files.manifest.signature
        return OnnxPredictor(
            session,
            output if isinstance(output, str) else _output_name(session),
            None if signature is None else signature.outputs,
        )
