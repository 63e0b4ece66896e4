"""Model packages and flavors: save a model as a verified directory, load it, predict.

A package is a directory with ``modelyard.yaml`` (flavor, signature, python and library
versions, the SHA-256 of every file, source run) and the flavor's files. Loading checks
every digest before anything is deserialized. See ``docs/models.md``.
"""

from __future__ import annotations

from modelyard.models._base import Flavor, Predictor, SavedFlavor
from modelyard.models._optimize import OptimizeReport, optimize_to_onnx
from modelyard.models._package import (
    FLAVORS,
    LoadedModel,
    detect_flavor,
    get_flavor,
    import_mlflow_model,
    load_model,
    save_model,
)
from modelyard.models._pyfunc import PythonModelContext
from modelyard.models._validate import conform
from modelyard.models.manifest import (
    MANIFEST_NAME,
    ModelManifest,
    PackageFile,
    VerifiedFiles,
    read_manifest,
    verify_package,
)
from modelyard.models.signature import (
    ColumnSchema,
    ColumnSpec,
    ModelInput,
    Schema,
    Signature,
    TensorSchema,
    infer_schema,
)

__all__ = [
    "FLAVORS",
    "MANIFEST_NAME",
    "ColumnSchema",
    "ColumnSpec",
    "Flavor",
    "LoadedModel",
    "ModelInput",
    "ModelManifest",
    "OptimizeReport",
    "PackageFile",
    "Predictor",
    "PythonModelContext",
    "SavedFlavor",
    "Schema",
    "Signature",
    "TensorSchema",
    "VerifiedFiles",
    "conform",
    "detect_flavor",
    "get_flavor",
    "import_mlflow_model",
    "infer_schema",
    "load_model",
    "optimize_to_onnx",
    "read_manifest",
    "save_model",
    "verify_package",
]
