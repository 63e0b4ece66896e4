"""Importing MLflow model directories written by the real mlflow library."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from modelyard.core.errors import IntegrityError, InvalidInput
from modelyard.models import (
    ColumnSchema,
    ColumnSpec,
    TensorSchema,
    import_mlflow_model,
    load_model,
    save_model,
)

pytestmark = pytest.mark.filterwarnings(
    # Raised by mlflow itself: importing mlflow.pyfunc, and saving a python model without
    # an input example.
    "ignore:.*Any type hint is inferred as AnyType:UserWarning",
    "ignore:.*An input example was not provided when logging the model:UserWarning",
)


@pytest.fixture(scope="module")
def mlflow() -> ModuleType:
    # Imported here, not at module level: mlflow warns while importing, and module-level
    # warnings are raised at collection, outside this module's filters.
    import mlflow.models
    import mlflow.pyfunc
    import mlflow.sklearn

    return mlflow


def _save_sklearn(
    mlflow: ModuleType, model: object, x: pd.DataFrame | np.ndarray, dest: Path, fmt: str
) -> Path:
    signature = mlflow.models.infer_signature(x, model.predict(x))  # type: ignore[attr-defined]
    mlflow.sklearn.save_model(
        model,
        str(dest),
        signature=signature,
        serialization_format=fmt,
        pip_requirements=["scikit-learn"],  # skips requirement inference (slow)
    )
    return dest


@pytest.mark.parametrize("fmt", ["pickle", "cloudpickle"])
def test_sklearn_directory_imports_and_predicts_equal(
    tmp_path: Path,
    mlflow: ModuleType,
    scaled_logreg: Pipeline,
    class_frame: tuple[pd.DataFrame, np.ndarray],
    fmt: str,
) -> None:
    x, _ = class_frame
    src = _save_sklearn(mlflow, scaled_logreg, x, tmp_path / "mlflow_dir", fmt)
    manifest = import_mlflow_model(src, tmp_path / "pkg", source_run="r9")
    assert manifest.flavor == "mlflow"
    assert manifest.source_run == "r9"
    assert manifest.flavor_config["loader"] == "sklearn"
    assert "mlflow_model/MLmodel" in manifest.digests()
    assert manifest.signature is not None
    assert manifest.signature.inputs == ColumnSchema(
        tuple(ColumnSpec(c, "float64") for c in x.columns)
    )
    assert manifest.signature.outputs == TensorSchema("int64", (-1,))
    model = load_model(tmp_path / "pkg")
    np.testing.assert_array_equal(model.predict(x), scaled_logreg.predict(x))
    np.testing.assert_array_equal(model.predict(x.to_dict("records")), scaled_logreg.predict(x))
    with pytest.raises(InvalidInput, match="missing column 'f1'"):
        model.predict(x.drop(columns=["f1"]))


def test_ndarray_signature_maps_to_a_tensor(
    tmp_path: Path,
    mlflow: ModuleType,
    forest: RandomForestClassifier,
    class_frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    x, _ = class_frame
    plain = RandomForestClassifier(n_estimators=5, random_state=0).fit(
        x.to_numpy(), forest.classes_[forest.predict(x)]
    )
    src = _save_sklearn(mlflow, plain, x.to_numpy(), tmp_path / "d", "pickle")
    manifest = save_model(src, tmp_path / "pkg")  # auto-detected from the MLmodel file
    assert manifest.flavor == "mlflow"
    assert manifest.signature is not None
    assert manifest.signature.inputs == TensorSchema("float64", (-1, 4))
    np.testing.assert_array_equal(
        load_model(tmp_path / "pkg").predict(x.to_numpy()), plain.predict(x.to_numpy())
    )


def test_python_function_model_goes_through_mlflow_pyfunc(
    tmp_path: Path, mlflow: ModuleType
) -> None:
    class AddColumns(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        def predict(
            self, context: object, model_input: pd.DataFrame, params: object = None
        ) -> object:
            return model_input.sum(axis=1).to_numpy()

    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [10.0, 20.0]})
    mlflow.pyfunc.save_model(
        str(tmp_path / "d"),
        python_model=AddColumns(),
        pip_requirements=[],
        signature=mlflow.models.infer_signature(frame, frame.sum(axis=1).to_numpy()),
    )
    manifest = import_mlflow_model(tmp_path / "d", tmp_path / "pkg")
    assert manifest.flavor_config["loader"] == "pyfunc"
    assert load_model(tmp_path / "pkg").predict([{"a": 1.0, "b": 2.0}]).tolist() == [3.0]


def test_tampered_mlflow_pickle_is_refused(
    tmp_path: Path,
    mlflow: ModuleType,
    scaled_logreg: Pipeline,
    class_frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    x, _ = class_frame
    src = _save_sklearn(mlflow, scaled_logreg, x, tmp_path / "d", "pickle")
    import_mlflow_model(src, tmp_path / "pkg")
    with open(tmp_path / "pkg" / "mlflow_model" / "model.pkl", "ab") as f:
        f.write(b"\0")
    with pytest.raises(IntegrityError, match=r"'mlflow_model/model\.pkl'"):
        load_model(tmp_path / "pkg")


def test_directories_without_a_loadable_flavor_are_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(InvalidInput, match="no MLmodel file"):
        import_mlflow_model(tmp_path / "d", tmp_path / "pkg")
    (tmp_path / "d" / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    serialization_format: skops\n"
    )
    with pytest.raises(InvalidInput, match=r"flavors \['sklearn'\]"):
        import_mlflow_model(tmp_path / "d", tmp_path / "pkg")
    shutil.rmtree(tmp_path / "d")
    assert not (tmp_path / "pkg").exists()
