"""optimize_to_onnx: converts only when the ONNX model predicts like the original."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from modelyard.core.errors import InvalidInput
from modelyard.models import load_model, optimize_to_onnx, read_manifest, save_model


def test_random_forest_converts_and_matches(
    tmp_path: Path, forest: RandomForestClassifier, class_frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
    x, _ = class_frame
    save_model(forest, tmp_path / "sk", input_example=x[:20], source_run="r1")
    report = optimize_to_onnx(tmp_path / "sk", tmp_path / "onnx")
    assert report.task == "classifier"
    assert (report.n_example_rows, report.n_random_rows, report.n_compared) == (20, 1000, 1020)
    assert (report.rtol, report.atol) == (1e-4, 1e-5)
    assert "match on all 1020 rows" in report.summary()
    manifest = read_manifest(tmp_path / "onnx")
    assert manifest == report.manifest
    assert manifest.flavor == "onnx"
    assert manifest.source_run == "r1"
    assert manifest.flavor_config["converted_from"] == read_manifest(tmp_path / "sk").digests()
    converted = load_model(tmp_path / "onnx")
    np.testing.assert_array_equal(converted.predict(x), forest.predict(x))
    np.testing.assert_array_equal(converted.predict(x.to_dict("records")), forest.predict(x))


def test_pipeline_and_regressor_convert(
    tmp_path: Path,
    scaled_logreg: Pipeline,
    linreg: LinearRegression,
    class_frame: tuple[pd.DataFrame, np.ndarray],
    reg_array: tuple[np.ndarray, np.ndarray],
) -> None:
    x, _ = class_frame
    save_model(scaled_logreg, tmp_path / "pipe", input_example=x[:10])
    optimize_to_onnx(tmp_path / "pipe", tmp_path / "pipe_onnx")
    xr, _ = reg_array
    save_model(linreg, tmp_path / "reg", input_example=xr[:10])
    report = optimize_to_onnx(tmp_path / "reg", tmp_path / "reg_onnx", n_random_rows=200)
    assert report.task == "regressor"
    predicted = load_model(tmp_path / "reg_onnx").predict(xr)
    assert predicted.shape == (len(xr),)
    np.testing.assert_allclose(predicted, linreg.predict(xr), rtol=1e-4, atol=1e-5)


def test_mismatch_is_refused_with_an_explanation(
    tmp_path: Path, linreg: LinearRegression, reg_array: tuple[np.ndarray, np.ndarray]
) -> None:
    # float32 inference cannot reproduce float64 results exactly: zero tolerance fails.
    xr, _ = reg_array
    save_model(linreg, tmp_path / "reg", input_example=xr[:10])
    with pytest.raises(InvalidInput) as info:
        optimize_to_onnx(tmp_path / "reg", tmp_path / "out", rtol=0.0, atol=0.0)
    message = str(info.value)
    assert "does not match the original: values differ on" in message
    assert "of 1010 rows" in message
    assert "rtol=0, atol=0" in message
    assert "max abs diff" in message
    assert "e.g. row" in message
    assert not (tmp_path / "out").exists()


def test_label_mismatch_is_refused(
    tmp_path: Path,
    forest: RandomForestClassifier,
    class_frame: tuple[pd.DataFrame, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelyard.models import _optimize

    x, _ = class_frame
    save_model(forest, tmp_path / "sk", input_example=x[:20])
    real = _optimize._onnx_outputs

    def flip_first_label(onnx_bytes: bytes, data: object, shape: tuple[int, ...]) -> object:
        out = real(onnx_bytes, data, shape)  # type: ignore[arg-type]
        out.labels_or_values[0] = 1 - out.labels_or_values[0]
        return out

    monkeypatch.setattr(_optimize, "_onnx_outputs", flip_first_label)
    with pytest.raises(
        InvalidInput, match=r"labels or probabilities differ on 1 of 1020 rows \(1 of"
    ):
        optimize_to_onnx(tmp_path / "sk", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_only_sklearn_packages_with_examples(
    tmp_path: Path, forest: RandomForestClassifier
) -> None:
    save_model(forest, tmp_path / "noex")
    with pytest.raises(InvalidInput, match="needs the package's input example"):
        optimize_to_onnx(tmp_path / "noex", tmp_path / "out")

    class Model:
        def predict(self, data: object) -> list[int]:
            return [0]

    save_model(Model(), tmp_path / "py", input_example=[{"a": 1.0}])
    with pytest.raises(InvalidInput, match="this one is 'pyfunc'"):
        optimize_to_onnx(tmp_path / "py", tmp_path / "out")


def test_string_columns_are_refused(tmp_path: Path) -> None:
    from sklearn.dummy import DummyClassifier

    frame = pd.DataFrame({"city": ["a", "b"], "n": [1.0, 2.0]})
    model = DummyClassifier().fit(frame, [0, 1])
    save_model(model, tmp_path / "sk", input_example=frame)
    with pytest.raises(InvalidInput, match="column 'city' is not"):
        optimize_to_onnx(tmp_path / "sk", tmp_path / "out")
