"""The ``mlflow`` flavor: an MLflow model directory (one with an ``MLmodel`` file).

The directory is copied into the package under ``mlflow_model/`` and every file gets a
digest like any other. Loading is native when the MLmodel has an ``sklearn`` flavor
saved with pickle or cloudpickle (``model.pkl``) or an ``onnx`` flavor; any other
model goes through ``mlflow.pyfunc.load_model``, which needs MLflow (and the model's own
libraries) installed. Reading ``MLmodel`` needs PyYAML.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pandas as pd

from modelyard.core.errors import InvalidInput
from modelyard.models._base import Flavor, Predictor, SavedFlavor, as_output
from modelyard.models._onnx import OnnxPredictor, _output_name, _session
from modelyard.models._sklearn import SklearnPredictor, load_pickle
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

MODEL_DIR = "mlflow_model"
_COLUMN_TYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "string",
    "binary": "object",
    "datetime": "datetime",
}
_TENSOR_TYPES = {"str": "string", "object": "object", "bool": "bool"}


def read_mlmodel(src: Path) -> dict[str, object]:
    """Parse the ``MLmodel`` file of an MLflow model directory.

    Raises:
        InvalidInput: no ``MLmodel`` file, PyYAML is missing, or the file is malformed.
    """
    try:
        text = (src / "MLmodel").read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise InvalidInput(f"{src} is not an MLflow model directory: no MLmodel file") from exc
    try:
        import yaml
    except ImportError as exc:
        raise InvalidInput("reading an MLmodel file needs PyYAML (pip install pyyaml)") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"invalid MLmodel file in {src}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("flavors"), dict):
        raise InvalidInput(f"invalid MLmodel file in {src}: no 'flavors' mapping")
    return doc


def _schema(raw: object) -> Schema | None:
    if not isinstance(raw, str):
        return None
    try:
        items = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        return None
    if items[0].get("type") == "tensor":
        spec = items[0].get("tensor-spec", {})
        if len(items) != 1 or not isinstance(spec, dict):
            return None  # several named tensors: not mapped
        dtype = str(spec.get("dtype"))
        shape = spec.get("shape")
        if not isinstance(shape, list):
            return None
        return TensorSchema(_TENSOR_TYPES.get(dtype, dtype), tuple(int(d) for d in shape))
    dtypes = [_COLUMN_TYPES.get(str(i.get("type")), "object") for i in items]
    names = [i.get("name") for i in items]
    if len(items) == 1 and names[0] is None:
        return TensorSchema(dtypes[0], (-1,))
    if not all(isinstance(n, str) for n in names):
        return None
    return ColumnSchema(tuple(ColumnSpec(str(n), d) for n, d in zip(names, dtypes, strict=True)))


def mlflow_signature(mlmodel: Mapping[str, object]) -> Signature | None:
    """The MLmodel's signature in modelyard terms, or None when absent or not mappable."""
    raw = mlmodel.get("signature")
    if not isinstance(raw, dict):
        return None
    inputs = _schema(raw.get("inputs"))
    return None if inputs is None else Signature(inputs, _schema(raw.get("outputs")))


def pyfunc_loader(flavors: Mapping[str, object]) -> dict[str, JSONValue]:
    sk = flavors.get("sklearn")
    if isinstance(sk, dict) and sk.get("serialization_format", "pickle") in (
        "pickle",
        "cloudpickle",
    ):
        return {
            "loader": "sklearn",
            "model_file": f"{MODEL_DIR}/{sk.get('pickled_model', 'model.pkl')}",
            "serialization_format": str(sk.get("serialization_format", "pickle")),
        }
    ox = flavors.get("onnx")
    if isinstance(ox, dict) and isinstance(ox.get("data"), str):
        return {"loader": "onnx", "model_file": f"{MODEL_DIR}/{ox['data']}"}
    if "python_function" in flavors:
        return {"loader": "pyfunc"}
    raise InvalidInput(
        f"the MLflow model has flavors {sorted(flavors)}: modelyard loads sklearn (pickle or "
        "cloudpickle), onnx, or anything with a python_function flavor"
    )


class MlflowPyfuncPredictor:
    """Calls a model loaded by ``mlflow.pyfunc.load_model``."""

    def __init__(self, model: object) -> None:
        self.model = model

    def predict(self, data: pd.DataFrame | Array) -> Array:
        """The MLflow model's ``predict(data)`` as an ndarray."""
        return as_output(self.model.predict(data))  # type: ignore[attr-defined]


class MlflowFlavor(Flavor):
    """Imports an MLflow model directory (pass its path as the model)."""

    name: ClassVar[str] = "mlflow"
    distributions: ClassVar[tuple[str, ...]] = ("mlflow", "mlflow-skinny", "numpy", "pandas")

    def accepts(self, model: object) -> bool:
        return isinstance(model, Path) and (model / "MLmodel").is_file()

    def save(self, model: object, dest: Path) -> SavedFlavor:
        if not isinstance(model, Path):
            raise InvalidInput("flavor 'mlflow' needs the path of an MLflow model directory")
        mlmodel = read_mlmodel(model)
        flavors = mlmodel["flavors"]
        if not isinstance(flavors, dict):  # read_mlmodel checked it; this narrows the type
            raise InvalidInput(f"invalid MLmodel file in {model}: no 'flavors' mapping")
        config = pyfunc_loader(flavors)
        shutil.copytree(model, dest / MODEL_DIR)
        config["model_dir"] = MODEL_DIR
        config["mlflow_flavors"] = [str(k) for k in sorted(flavors)]
        config["mlflow_version"] = str(mlmodel.get("mlflow_version", "unknown"))
        return SavedFlavor(config=config, signature=mlflow_signature(mlmodel))

    def load(self, files: VerifiedFiles, config: Mapping[str, JSONValue]) -> Predictor:
        loader, model_file = config.get("loader"), config.get("model_file")
        if loader == "sklearn" and isinstance(model_file, str):
            fmt = config.get("serialization_format")
            return SklearnPredictor(load_pickle(files, model_file, fmt))
        if loader == "onnx" and isinstance(model_file, str):
            session = _session(files.read_bytes(model_file))
            sig = files.manifest.signature
            return OnnxPredictor(
                session, _output_name(session), None if sig is None else sig.outputs
            )
        if loader == "pyfunc":
            try:
                import mlflow.pyfunc
            except ImportError as exc:
                raise InvalidInput(
                    "this MLflow model loads only through mlflow.pyfunc: install mlflow"
                ) from exc
            model_dir = config.get("model_dir", MODEL_DIR)
            return MlflowPyfuncPredictor(mlflow.pyfunc.load_model(str(files.root / str(model_dir))))
        raise InvalidInput(f"mlflow flavor: unknown loader {loader!r}")
