"""The unmodified ``mlflow`` client logs, registers, aliases and loads a model against a
real ``modelyard server``, and modelyard's own SDK loads the same version."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from modelyard.testing.server_process import ServerProcess, running_server

with warnings.catch_warnings():
    # Importing mlflow.pyfunc infers schemas of its own agent types and warns about them.
    warnings.filterwarnings(
        "ignore", message=r".*Any type hint is inferred as AnyType", category=UserWarning
    )
    import mlflow.pyfunc
    import mlflow.sklearn

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("mlflow-registry")) as process:
        yield process


@pytest.fixture(autouse=True)
def mlflow_client_env(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the (process-global) MLflow client at the server; leave no state behind."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.admin_token)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_UV_AUTO_DETECT", "false")  # no `uv export` per logged model
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    mlflow.set_tracking_uri(server.uri)
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    try:
        yield
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    features, labels = make_classification(n_samples=200, n_features=5, random_state=7)
    return features, labels


def _native(server: ServerProcess, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    return httpx.get(f"{server.uri}{path}", headers=headers, timeout=10)


# Given requirements skip MLflow's inference of them (a subprocess importing the model,
# ~7 s); the first model of the main test is logged without, as users do.
QUICK = {"pip_requirements": ["scikit-learn"]}


def _log(
    model: LogisticRegression, features: np.ndarray, name: str, **options: object
) -> tuple[str, str, int]:
    """(run id, logged model id, registered version) of one ``log_model`` call."""
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=features[:5], registered_model_name=name, **options
        )
    assert info.registered_model_version is not None
    return run.info.run_id, info.model_id, int(info.registered_model_version)


def _modelyard_predict(server: ServerProcess, uri: str, features: np.ndarray, tmp: Path) -> list:
    """``my.load_model(uri).predict`` in a fresh process (the SDK has process-wide state)."""
    np.save(tmp / "x.npy", features)
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        import modelyard as my
        model = my.load_model({uri!r})
        prediction = model.predict(np.load({str(tmp / "x.npy")!r}))
        json.dump({{"flavor": model.flavor, "y": prediction.tolist()}}, sys.stdout)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**server.env(), "MODELYARD_TOKEN": server.admin_token},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["flavor"] == "mlflow"
    return list(out["y"])


def test_a_model_logged_by_mlflow_loads_through_mlflow_and_modelyard(
    server: ServerProcess, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    features, labels = data
    model = LogisticRegression(max_iter=500).fit(features, labels)
    expected = model.predict(features)
    run_id, model_id, version = _log(model, features, "churn")
    assert version == 1
    client = MlflowClient()

    logged = client.get_logged_model(model_id)
    assert logged.status == LoggedModelStatus.READY
    assert logged.source_run_id == run_id
    assert logged.artifact_location == f"mlflow-artifacts:/0/models/{model_id}/artifacts"
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": "churn", "version": "1"}]

    client.set_registered_model_alias("churn", "production", 1)
    by_alias = client.get_model_version_by_alias("churn", "production")
    assert (by_alias.name, by_alias.version, by_alias.status) == ("churn", "1", "READY")
    assert by_alias.run_id == run_id
    assert by_alias.source == f"models:/{model_id}"
    assert by_alias.aliases == ["production"]
    assert client.get_registered_model("churn").aliases == {"production": "1"}

    pyfunc = mlflow.pyfunc.load_model("models:/churn@production")
    np.testing.assert_array_equal(pyfunc.predict(features), expected)
    sklearn_model = mlflow.sklearn.load_model("models:/churn/1")
    np.testing.assert_array_equal(sklearn_model.predict(features), expected)
    np.testing.assert_array_equal(
        mlflow.pyfunc.load_model(f"models:/{model_id}").predict(features), expected
    )

    # the same version, seen and loaded through modelyard
    native = _native(server, "/api/v1/projects/default/models/churn")
    assert native.status_code == 200, native.text
    (only,) = native.json()["versions"]
    assert (only["version"], only["flavor"], only["source_run_id"]) == (1, "mlflow", run_id)
    assert _modelyard_predict(server, "models:/churn@production", features, tmp_path) == list(
        expected
    )

    # a second log_model under the same name is version 2; moving the alias is recorded
    retrained = LogisticRegression(max_iter=500, C=0.01).fit(features, labels)
    _run_2, _model_2, version_2 = _log(retrained, features, "churn", **QUICK)
    assert version_2 == 2
    client.set_registered_model_alias("churn", "production", 2)
    assert client.get_model_version_by_alias("churn", "production").version == "2"
    np.testing.assert_array_equal(
        mlflow.pyfunc.load_model("models:/churn@production").predict(features),
        retrained.predict(features),
    )
    history = _native(server, "/api/v1/projects/default/models/churn/history").json()
    moves = [(h["alias"], h["from_version"], h["to_version"]) for h in history]
    assert moves == [("production", None, 1), ("production", 1, 2)]


def test_a_run_uri_registers_and_lists_the_logged_model(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    features, labels = data
    model = LogisticRegression(max_iter=500).fit(features, labels)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", input_example=features[:5], **QUICK)
    run_id = run.info.run_id

    registered = mlflow.register_model(f"runs:/{run_id}/model", "churn-from-run")
    assert registered.version == "1"
    assert registered.source == f"models:/{info.model_id}"
    listed = {f.path for f in MlflowClient().list_artifacts(run_id, "model")}
    assert {"model/MLmodel", "model/model.skops"} <= listed
    loaded = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))


def test_errors_use_mlflow_codes(server: ServerProcess) -> None:
    client = MlflowClient()
    with pytest.raises(MlflowException) as err:
        client.get_registered_model("no-such-model")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    client.create_registered_model("errors")
    with pytest.raises(MlflowException) as err:
        client.create_registered_model("errors")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as err:
        client.set_registered_model_alias("errors", "production", 3)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as err:  # MLflow's own answer for an unset alias
        client.get_model_version_by_alias("errors", "production")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert str(err.value) == (
        "INVALID_PARAMETER_VALUE: Registered model alias production not found."
    )
    with pytest.raises(MlflowException) as err:
        client.get_logged_model(f"m-{'0' * 32}")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    # a token capped to viewer may read the registry but not write it
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    issued = httpx.post(
        f"{server.uri}/api/v1/tokens",
        json={"name": "read-only", "project": "default", "role": "viewer"},
        headers=admin,
    )
    assert issued.status_code == 201, issued.text
    viewer = {"Authorization": f"Bearer {issued.json()['token']}"}
    base = f"{server.uri}/api/2.0/mlflow"
    created = httpx.post(f"{base}/registered-models/create", json={"name": "x"}, headers=viewer)
    assert created.status_code == 403
    assert created.json()["error_code"] == "PERMISSION_DENIED"
    read = httpx.get(f"{base}/registered-models/get", params={"name": "errors"}, headers=viewer)
    assert read.status_code == 200, read.text
