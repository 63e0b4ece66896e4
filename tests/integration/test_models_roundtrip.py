"""A saved model package reproduces its predictions in a fresh Python process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelyard.models import optimize_to_onnx, read_manifest, save_model

_LOADER = """
import json, sys
import pandas as pd
from pathlib import Path
from modelyard.models import load_model
jobs = json.loads(sys.stdin.read())
out = {}
for name, job in jobs.items():
    model = load_model(Path(job["path"]), expected_files=job["digests"])
    data = pd.DataFrame(job["rows"], columns=job["columns"])
    out[name] = {"flavor": model.flavor, "predictions": model.predict(data).tolist()}
print(json.dumps(out))
"""


def _predict_in_fresh_process(jobs: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", _LOADER],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, dict[str, object]] = json.loads(done.stdout)
    return result


@pytest.mark.slow
def test_packages_predict_the_same_in_a_fresh_process(tmp_path: Path) -> None:
    xc, yc = make_classification(n_samples=150, n_features=5, random_state=1)
    xr, yr = make_regression(n_samples=150, n_features=5, noise=0.5, random_state=1)
    columns = [f"x{i}" for i in range(5)]
    frame_c, frame_r = pd.DataFrame(xc, columns=columns), pd.DataFrame(xr, columns=columns)
    models = {
        "logreg": (LogisticRegression().fit(frame_c, yc), frame_c),
        "forest": (
            RandomForestClassifier(n_estimators=10, random_state=0).fit(frame_c, yc),
            frame_c,
        ),
        "pipeline": (
            make_pipeline(StandardScaler(), LogisticRegression()).fit(frame_c, yc),
            frame_c,
        ),
        "regressor": (
            RandomForestRegressor(n_estimators=10, random_state=0).fit(frame_r, yr),
            frame_r,
        ),
    }
    jobs: dict[str, dict[str, object]] = {}
    expected: dict[str, np.ndarray] = {}
    for name, (model, frame) in models.items():
        save_model(model, tmp_path / name, input_example=frame[:25], source_run="run-1")
        expected[name] = model.predict(frame)
        if name in ("forest", "regressor"):
            optimize_to_onnx(tmp_path / name, tmp_path / f"{name}_onnx")
            expected[f"{name}_onnx"] = expected[name]
    for name in expected:
        frame = frame_r if name.startswith("regressor") else frame_c
        jobs[name] = {
            "path": str(tmp_path / name),
            "digests": read_manifest(tmp_path / name).digests(),
            "columns": columns,
            "rows": frame.to_numpy().tolist(),
        }

    results = _predict_in_fresh_process(jobs)

    for name in ("logreg", "forest", "pipeline", "regressor"):
        assert results[name]["flavor"] == "sklearn"
        assert results[name]["predictions"] == expected[name].tolist(), name  # exactly equal
    for name in ("forest_onnx", "regressor_onnx"):
        assert results[name]["flavor"] == "onnx"
        np.testing.assert_allclose(
            np.asarray(results[name]["predictions"]), expected[name], rtol=1e-4, atol=1e-5
        )
