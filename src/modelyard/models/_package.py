"""Saving and loading model packages.

A package is a directory: ``modelyard.yaml`` (see :class:`ModelManifest`), the flavor's
files, and ``input_example.json`` when an example was given. It is written to a
temporary sibling directory and renamed into place, so a reader never sees half a
package. Loading verifies every file's digest before the flavor deserializes anything.
"""

from __future__ import annotations

import datetime as dt
import platform
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from modelyard.core.errors import AlreadyExists, InvalidInput
from modelyard.models._base import Flavor, Predictor, SavedFlavor, library_versions
from modelyard.models._example import EXAMPLE_FILE, decode_example, encode_example
from modelyard.models._onnx import OnnxFlavor
from modelyard.models._pyfunc import PyfuncFlavor
from modelyard.models._sklearn import SklearnFlavor
from modelyard.models._validate import conform
from modelyard.models.manifest import (
    MANIFEST_NAME,
    ModelManifest,
    PackageFile,
    VerifiedFiles,
    encode_manifest,
    list_package_files,
    read_manifest,
    sha256_file,
    verify_package,
)
from modelyard.models.mlflow import MlflowFlavor
from modelyard.models.signature import (
    Array,
    JSONValue,
    ModelInput,
    Signature,
    infer_schema,
)

# In auto-detection order: the most specific first, pyfunc (anything with predict) last.
FLAVORS: tuple[type[Flavor], ...] = (MlflowFlavor, SklearnFlavor, OnnxFlavor, PyfuncFlavor)


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``.

    Raises:
        InvalidInput: no flavor has that name.
    """
    for cls in FLAVORS:
        if cls.name == name:
            return cls()
    raise InvalidInput(f"unknown flavor {name!r}: expected one of {[f.name for f in FLAVORS]}")


def detect_flavor(model: object) -> Flavor:
    """The flavor auto-detection picks for ``model``.

    Raises:
        InvalidInput: no flavor accepts the model.
    """
    for cls in FLAVORS:
        flavor = cls()
        if flavor.accepts(model):
            return flavor
    raise InvalidInput(
        f"cannot package a {type(model).__name__}: expected a scikit-learn estimator, an ONNX "
        "model, an MLflow model directory, or an object with a predict method"
    )


class LoadedModel:
    """A verified, loaded model package.

    ``predict`` always returns a numpy ndarray with one entry (or row) per input row, for
    every flavor: sklearn returns ``estimator.predict``; onnx the ``label`` output (or
    the first output), a ``(n, 1)`` result flattened when the output signature is 1-D;
    pyfunc and MLflow models their ``predict`` result through ``numpy.asarray`` (a
    DataFrame's values).
    """

    def __init__(self, path: Path, manifest: ModelManifest, predictor: Predictor) -> None:
        self.path = path
        self.manifest = manifest
        self._predictor = predictor

    @property
    def predictor(self) -> Predictor:
        """The flavor's loaded model; ``predict`` on it skips signature validation."""
        return self._predictor

    @property
    def flavor(self) -> str:
        """The package's flavor name."""
        return self.manifest.flavor

    @property
    def signature(self) -> Signature | None:
        """The package's signature, if it has one."""
        return self.manifest.signature

    def input_example(self) -> pd.DataFrame | Array | None:
        """The stored input example, or None."""
        if self.manifest.input_example is None:
            return None
        return decode_example((self.path / self.manifest.input_example).read_bytes())

    def predict(self, data: ModelInput) -> Array:
        """Validate ``data`` against the input signature, then predict.

        Args:
            data: A pandas DataFrame, a numpy ndarray, a list of records (dicts), or a
                dict of columns (one record when every value is a scalar).

        Returns:
            A numpy ndarray, one entry (or row) per input row.

        Raises:
            InvalidInput: the data does not fit the signature; the message names the
                missing or mistyped column, or the dimension of the wrong size.
        """
        schema = None if self.signature is None else self.signature.inputs
        return self._predictor.predict(conform(data, schema))


def save_model(
    model: object,
    path: Path,
    *,
    flavor: str | None = None,
    input_example: ModelInput | None = None,
    signature: Signature | None = None,
    source_run: str | None = None,
) -> ModelManifest:
    """Write ``model`` as a package directory at ``path``, atomically.

    Args:
        model: A scikit-learn estimator or Pipeline, an ONNX ModelProto or its bytes, an
            object with ``predict`` (pyfunc), or the Path of an MLflow model directory.
        path: Where the package directory is created; must not exist (or be empty).
        flavor: ``sklearn``, ``onnx``, ``pyfunc`` or ``mlflow``; detected when None.
        input_example: A few input rows. Stored as JSON; the signature is inferred from
            it (inputs) and from the model's prediction on it (outputs).
        signature: An explicit signature, overriding inference.
        source_run: The id of the run that produced the model.

    Returns:
        The manifest written to ``modelyard.yaml``.

    Raises:
        InvalidInput: the model does not fit the flavor, or predicting on the example
            fails.
        AlreadyExists: ``path`` exists and is not an empty directory.
    """
    return write_package(
        model,
        path,
        flavor=flavor,
        input_example=input_example,
        signature=signature,
        source_run=source_run,
    )


def write_package(
    model: object,
    path: Path,
    *,
    flavor: str | None,
    input_example: ModelInput | None,
    signature: Signature | None,
    source_run: str | None,
    extra_config: Mapping[str, JSONValue] | None = None,
) -> ModelManifest:
    """:func:`save_model`, plus fields merged into the flavor's manifest fields."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise AlreadyExists(f"cannot save a model package at {path}: it already exists")
    chosen = detect_flavor(model) if flavor is None else get_flavor(flavor)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{secrets.token_hex(8)}"
    tmp.mkdir()
    try:
        saved = chosen.save(model, tmp)
        if extra_config:
            saved = SavedFlavor({**saved.config, **extra_config}, saved.signature)
        if input_example is not None:
            (tmp / EXAMPLE_FILE).write_bytes(encode_example(input_example))
        final_signature = signature or _infer_signature(chosen, tmp, saved, input_example)
        manifest = _build_manifest(tmp, chosen, saved, final_signature, input_example, source_run)
        (tmp / MANIFEST_NAME).write_bytes(encode_manifest(manifest))
        if path.exists():
            path.rmdir()  # empty, checked above
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _infer_signature(
    flavor: Flavor, tmp: Path, saved: SavedFlavor, example: ModelInput | None
) -> Signature | None:
    if example is None:
        return saved.signature
    inputs = infer_schema(example)
    files = VerifiedFiles(tmp, _build_manifest(tmp, flavor, saved, None, None, None))
    predictor = flavor.load(files, saved.config)
    try:
        output = predictor.predict(conform(example, inputs))
    except Exception as exc:  # any failure of user code on its own example
        raise InvalidInput(f"the model failed to predict on its input example: {exc}") from exc
    return Signature(inputs, infer_schema(output))


def _build_manifest(
    root: Path,
    flavor: Flavor,
    saved: SavedFlavor,
    signature: Signature | None,
    example: ModelInput | None,
    source_run: str | None,
) -> ModelManifest:
    files = []
    for rel in list_package_files(root):
        digest, size = sha256_file(root / rel)
        files.append(PackageFile(rel, digest, size))
    return ModelManifest(
        flavor=flavor.name,
        files=tuple(files),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        python_version=platform.python_version(),
        libraries=library_versions(flavor.distributions),
        signature=signature,
        source_run=source_run,
        input_example=EXAMPLE_FILE if example is not None else None,
        flavor_config=dict(saved.config),
    )


def load_model(path: Path, *, expected_files: Mapping[str, str] | None = None) -> LoadedModel:
    """Verify a package and load its model.

    Every file's SHA-256 is checked against ``modelyard.yaml`` (and against
    ``expected_files`` when given) before the flavor deserializes anything.

    Args:
        path: The package directory.
        expected_files: The digests recorded at registration (path → SHA-256), which
            the package must match; see :func:`verify_package`.

    Returns:
        The loaded model.

    Raises:
        NotFound: ``path`` is not a package.
        IntegrityError: a file is missing, extra, or does not match its digest; the
            message names it.
        InvalidInput: the manifest is malformed or the flavor cannot load here.
    """
    root = Path(path)
    manifest = read_manifest(root)
    verify_package(root, manifest, expected_files=expected_files)
    flavor = get_flavor(manifest.flavor)
    predictor = flavor.load(VerifiedFiles(root, manifest), manifest.flavor_config)
    return LoadedModel(root, manifest, predictor)


def import_mlflow_model(
    src_dir: Path, dest: Path, *, source_run: str | None = None
) -> ModelManifest:
    """Copy an MLflow model directory into a modelyard package at ``dest``.

    The MLmodel signature is mapped when present (named columns or one tensor).

    Raises:
        InvalidInput: ``src_dir`` has no MLmodel, or no flavor modelyard can load.
        AlreadyExists: ``dest`` exists and is not an empty directory.
    """
    return save_model(Path(src_dir), dest, flavor="mlflow", source_run=source_run)
