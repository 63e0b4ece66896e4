"""Competitor set-up for the serving benchmark: venvs, model files, launch commands.

Each competitor gets its own venv (``uv venv`` + ``uv pip install``) under the work dir,
with the same scikit-learn version as modelyard's venv, and fits the same model there
(same data, same seed) so nothing crosses library versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import sklearn  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
UV = str(ROOT / ".venv" / "bin" / "uv")
COLUMNS = [f"f{i}" for i in range(20)]
ROW = [round(0.1 * i - 1.0, 3) for i in range(20)]

FIT = """
import sys, pickle
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
kind, out = sys.argv[1], sys.argv[2]
x, y = make_classification(n_samples=20000, n_features=20, random_state=0)
cols = [f"f{i}" for i in range(20)]
frame = pd.DataFrame(x, columns=cols)
model = (LogisticRegression(max_iter=1000) if kind == "logreg"
         else RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1))
model.fit(frame if sys.argv[3] == "frame" else x, y)
if sys.argv[4] == "mlflow":
    import mlflow.sklearn
    from mlflow.models import infer_signature
    mlflow.sklearn.save_model(model, out, serialization_format="cloudpickle",
                              signature=infer_signature(frame[:5], model.predict(frame[:5])))
else:
    pickle.dump(model, open(out, "wb"))
"""

BENTO_SERVICE = """
import pickle, os
import numpy as np
import bentoml

MODEL = pickle.load(open(os.environ["BENCH_MODEL"], "rb"))
BATCHABLE = os.environ.get("BENCH_BATCHABLE") == "1"


@bentoml.service(workers=1)
class Bench:
    @bentoml.api(batchable=BATCHABLE, max_batch_size=64, max_latency_ms=5)
    def predict(self, input: np.ndarray) -> np.ndarray:
        return MODEL.predict(input)
"""


@dataclass(frozen=True)
class Launch:
    """How to start one system and what to POST to it."""

    name: str
    cmd: list[str]
    url_path: str
    body: str
    env: dict[str, str]


def make_venv(work: Path, name: str, packages: list[str]) -> Path:
    """A venv with ``packages`` (and this scikit-learn version); reused when present.

    Bytecode is compiled at install (as pip does by default, and as modelyard's own
    ``uv sync`` does), so every system's cold start is measured with a .pyc cache.
    """
    venv = work / f"venv-{name}"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([UV, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    pins = [*packages, f"scikit-learn=={sklearn.__version__}", "pandas"]
    subprocess.run(
        [UV, "pip", "install", "-q", "--compile-bytecode", "--python", str(python), *pins],
        check=True,
    )
    return python


def mlflow_launch(work: Path, kind: str, port: int) -> Launch:
    """``mlflow models serve --env-manager local`` on an MLflow sklearn model."""
    python = make_venv(work, "mlflow", ["mlflow==3.17.2"])
    model_dir = work / f"mlflow-{kind}"
    if not model_dir.exists():
        subprocess.run(
            [str(python), "-c", FIT, kind, str(model_dir), "frame", "mlflow"], check=True
        )
    body = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}})
    cmd = [str(python.parent / "mlflow"), "models", "serve", "-m", str(model_dir)]
    cmd += ["--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)]
    env = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "PATH": _path(python)}
    return Launch("mlflow", cmd, "/invocations", body, env)


def bentoml_launch(work: Path, kind: str, port: int, *, batchable: bool) -> Launch:
    """``bentoml serve`` of a one-API service, adaptive batching on or off."""
    python = make_venv(work, "bentoml", ["bentoml"])
    model_file = work / f"bento-{kind}.pkl"
    if not model_file.exists():
        subprocess.run(
            [str(python), "-c", FIT, kind, str(model_file), "array", "pickle"], check=True
        )
    service_dir = work / "bento-service"
    service_dir.mkdir(exist_ok=True)
    (service_dir / "service.py").write_text(BENTO_SERVICE)
    cmd = [str(python.parent / "bentoml"), "serve", "service:Bench", "--port", str(port)]
    cmd += ["--host", "127.0.0.1", "--working-dir", str(service_dir)]
    env = {
        "BENCH_MODEL": str(model_file),
        "BENCH_BATCHABLE": "1" if batchable else "0",
        "BENTOML_DO_NOT_TRACK": "true",
        "DO_NOT_TRACK": "1",
        "PATH": _path(python),
    }
    name = "bentoml-batch" if batchable else "bentoml"
    return Launch(name, cmd, "/predict", json.dumps({"input": [ROW]}), env)


def _path(python: Path) -> str:
    """PATH with the venv's scripts first (mlflow starts ``uvicorn`` by name)."""
    return f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"
