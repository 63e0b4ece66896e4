"""Model packages: save/load per flavor, the manifest, atomic writes, and safe loading."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from modelyard.core.errors import AlreadyExists, IntegrityError, InvalidInput, NotFound
from modelyard.models import (
    MANIFEST_NAME,
    ColumnSchema,
    PythonModelContext,
    TensorSchema,
    detect_flavor,
    load_model,
    read_manifest,
    save_model,
    verify_package,
)


def test_sklearn_round_trip_with_manifest(
    tmp_path: Path, forest: RandomForestClassifier, class_frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
    x, _ = class_frame
    manifest = save_model(forest, tmp_path / "m", input_example=x[:5], source_run="run-1")
    assert manifest == read_manifest(tmp_path / "m")
    assert manifest.flavor == "sklearn"
    assert manifest.source_run == "run-1"
    assert manifest.libraries["scikit-learn"]
    assert [f.path for f in manifest.files] == ["input_example.json", "model.pkl"]
    assert manifest.signature is not None
    assert manifest.signature.outputs == TensorSchema("int64", (-1,))
    doc = json.loads((tmp_path / "m" / MANIFEST_NAME).read_text())
    assert doc["format_version"] == 1
    assert doc["flavor"] == "sklearn"
    model = load_model(tmp_path / "m")
    assert model.flavor == "sklearn"
    np.testing.assert_array_equal(model.predict(x), forest.predict(x))
    pd.testing.assert_frame_equal(model.input_example(), x[:5].reset_index(drop=True))  # type: ignore[arg-type]


def test_pipeline_accepts_records_dicts_and_arrays(
    tmp_path: Path, scaled_logreg: Pipeline, class_frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
    x, _ = class_frame
    save_model(scaled_logreg, tmp_path / "m", input_example=x[:3])
    model = load_model(tmp_path / "m")
    want = scaled_logreg.predict(x[:4])
    shuffled = x[:4][["f3", "f1", "f0", "f2"]]
    for data in (
        x[:4],
        shuffled,
        x[:4].to_dict("records"),
        x[:4].to_dict("list"),
        x[:4].to_numpy(),
    ):
        np.testing.assert_array_equal(model.predict(data), want)
    with pytest.raises(InvalidInput, match="missing column 'f2'"):
        model.predict(x.drop(columns=["f2"]))


def test_regressor_trained_on_arrays_gets_arrays(
    tmp_path: Path, linreg: LinearRegression, reg_array: tuple[np.ndarray, np.ndarray]
) -> None:
    x, _ = reg_array
    manifest = save_model(linreg, tmp_path / "m", input_example=x[:2])
    assert manifest.signature is not None
    assert manifest.signature.inputs == TensorSchema("float64", (-1, 3))
    model = load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(x), linreg.predict(x))
    with pytest.raises(InvalidInput, match="dimension 1 of the input has size 2, expected 3"):
        model.predict(x[:, :2])


class Doubler:
    """A pyfunc model that only works once ``load_context`` has run."""

    def __init__(self) -> None:
        self.factor = 0.0

    def load_context(self, context: PythonModelContext) -> None:
        assert (context.model_dir / "python_model.pkl").is_file()
        self.factor = 2.0

    def predict(self, data: pd.DataFrame) -> pd.Series:
        return data["a"] * self.factor


def test_pyfunc_round_trip_calls_load_context(tmp_path: Path) -> None:
    example = pd.DataFrame({"a": [1.0, 2.0]})
    manifest = save_model(Doubler(), tmp_path / "m", input_example=example)
    assert manifest.flavor == "pyfunc"
    assert manifest.flavor_config["serialization_format"] == "cloudpickle"
    model = load_model(tmp_path / "m")
    assert model.predict([{"a": 3.0}]).tolist() == [6.0]
    assert model.predict({"a": [1.0, 2.5]}).tolist() == [2.0, 5.0]


def test_onnx_round_trip(
    tmp_path: Path, forest: RandomForestClassifier, class_frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
    from skl2onnx import to_onnx  # type: ignore[import-untyped]

    x, _ = class_frame
    onx = to_onnx(forest, x.to_numpy()[:1].astype(np.float32), options={"zipmap": False})
    manifest = save_model(onx, tmp_path / "m")
    assert manifest.flavor == "onnx"
    assert manifest.flavor_config["output"] == "label"
    assert manifest.signature is not None
    assert manifest.signature.inputs == TensorSchema("float32", (-1, 4))
    model = load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(x.to_numpy()), forest.predict(x))
    with pytest.raises(InvalidInput, match="dimension 1 of the input has size 3"):
        model.predict(x.to_numpy()[:, :3])


def test_flavor_detection(forest: RandomForestClassifier) -> None:
    assert detect_flavor(forest).name == "sklearn"
    assert detect_flavor(Doubler()).name == "pyfunc"
    assert detect_flavor(b"onnx bytes").name == "onnx"
    with pytest.raises(InvalidInput, match="cannot package a int"):
        detect_flavor(3)


def test_existing_destination_is_refused_and_nothing_half_written(
    tmp_path: Path, forest: RandomForestClassifier
) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(AlreadyExists):
        save_model(forest, tmp_path / "taken")

    class Broken:
        def predict(self, data: object) -> object:
            raise RuntimeError("boom")

    with pytest.raises(InvalidInput, match="failed to predict on its input example: boom"):
        save_model(Broken(), tmp_path / "broken", input_example=[{"a": 1}])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_not_a_package(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"no modelyard\.yaml"):
        load_model(tmp_path)


# --- safe loading --------------------------------------------------------------------


@pytest.fixture
def package(tmp_path: Path, forest: RandomForestClassifier) -> Path:
    save_model(forest, tmp_path / "pkg")
    return tmp_path / "pkg"


def test_one_changed_byte_is_refused_naming_the_file(package: Path) -> None:
    data = bytearray((package / "model.pkl").read_bytes())
    data[len(data) // 2] ^= 0x01
    (package / "model.pkl").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"'model\.pkl' does not match its recorded digest"):
        load_model(package)


class _Marker:
    """Unpickling this creates a directory: proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.path),))


def test_malicious_pickle_is_never_unpickled(package: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Marker(marker))
    pickle.loads(evil)  # noqa: S301 - the payload works: unpickling it does create the marker
    assert marker.exists()
    marker.rmdir()

    (package / "model.pkl").write_bytes(evil)
    with pytest.raises(IntegrityError, match=r"model\.pkl"):
        load_model(package)
    assert not marker.exists()


def test_extra_missing_and_linked_files_are_refused(package: Path, tmp_path: Path) -> None:
    manifest = read_manifest(package)
    (package / "zz_extra.py").write_text("print('hi')")
    with pytest.raises(IntegrityError, match=r"'zz_extra\.py' is not in modelyard\.yaml"):
        verify_package(package, manifest)
    (package / "zz_extra.py").unlink()
    (package / "model.pkl").unlink()
    with pytest.raises(IntegrityError, match=r"'model\.pkl' is missing"):
        verify_package(package, manifest)
    (package / "model.pkl").symlink_to(tmp_path / "elsewhere.pkl")
    with pytest.raises(IntegrityError, match=r"'model\.pkl' is a link"):
        verify_package(package, manifest)


def test_rewritten_manifest_is_caught_by_registration_digests(
    package: Path, tmp_path: Path
) -> None:
    """Whoever can rewrite the whole package cannot match the digests the registry kept."""
    recorded = read_manifest(package).digests()
    load_model(package, expected_files=recorded)  # untouched: loads
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Marker(marker))
    (package / "model.pkl").write_bytes(evil)
    doc = json.loads((package / MANIFEST_NAME).read_text())
    doc["files"] = [
        {"path": "model.pkl", "sha256": hashlib.sha256(evil).hexdigest(), "size": len(evil)}
    ]
    (package / MANIFEST_NAME).write_text(json.dumps(doc))
    verify_package(package, read_manifest(package))  # the forgery is self-consistent
    with pytest.raises(IntegrityError, match=r"'model\.pkl' does not match the digest recorded at"):
        load_model(package, expected_files=recorded)
    assert not marker.exists()


def test_registration_digests_must_cover_every_file(package: Path) -> None:
    with pytest.raises(IntegrityError, match=r"'model\.pkl' was not recorded at registration"):
        load_model(package, expected_files={})
    recorded = read_manifest(package).digests()
    recorded[MANIFEST_NAME] = "0" * 64
    with pytest.raises(IntegrityError, match=r"'modelyard\.yaml' does not match"):
        load_model(package, expected_files=recorded)


def test_malformed_manifest_is_invalid_input(package: Path) -> None:
    (package / MANIFEST_NAME).write_text('{"format_version": 1, "flavor": "sklearn"}')
    with pytest.raises(InvalidInput, match="'created_at' must be a string"):
        read_manifest(package)
    doc = {"format_version": 1, "flavor": "sklearn", "created_at": "x", "python_version": "3"}
    doc["files"] = [{"path": "../evil", "sha256": "0" * 64, "size": 1}]  # type: ignore[assignment]
    (package / MANIFEST_NAME).write_text(json.dumps(doc))
    with pytest.raises(InvalidInput, match=r"\.\."):
        read_manifest(package)


def test_column_schema_from_array_example_of_named_frame(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})

    class Echo:
        def predict(self, data: pd.DataFrame) -> list[str]:
            return [f"{a}{b}" for a, b in zip(data["a"], data["b"], strict=True)]

    manifest = save_model(Echo(), tmp_path / "m", input_example=frame)
    assert manifest.signature is not None
    assert isinstance(manifest.signature.inputs, ColumnSchema)
    model = load_model(tmp_path / "m")
    assert model.predict({"a": 3, "b": "z"}).tolist() == ["3z"]
    with pytest.raises(InvalidInput, match="column 'b' has dtype int64"):
        model.predict({"a": [3], "b": [4]})
