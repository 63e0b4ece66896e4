"""The unmodified ``mlflow`` client (mlflow-skinny, pinned in uv.lock) against a real
``modelyard server`` process: what MLflow users do, and what they get back."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from modelyard.testing.server_process import ServerProcess, running_server

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("mlflow-server")) as process:
        yield process


@pytest.fixture(autouse=True)
def mlflow_client_env(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the (process-global) MLflow client at the server; leave no state behind."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.admin_token)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
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


def _native(server: ServerProcess, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    return httpx.get(f"{server.uri}{path}", headers=headers, timeout=10)


def test_experiments_are_created_found_and_named_uniquely() -> None:
    client = MlflowClient()
    experiment_id = mlflow.create_experiment("mlflow-exp-a", tags={"team": "growth"})
    assert isinstance(experiment_id, str)
    assert experiment_id != "0"

    found = mlflow.get_experiment_by_name("mlflow-exp-a")
    assert found is not None
    assert found.experiment_id == experiment_id
    assert found.tags == {"team": "growth"}
    assert found.artifact_location == f"mlflow-artifacts:/{experiment_id}"
    assert mlflow.get_experiment_by_name("no-such-experiment") is None
    assert mlflow.set_experiment("mlflow-exp-a").experiment_id == experiment_id
    created = mlflow.set_experiment("mlflow-exp-b")
    assert created.experiment_id not in ("0", experiment_id)

    with pytest.raises(MlflowException) as err:
        mlflow.create_experiment("mlflow-exp-a")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"

    client.rename_experiment(experiment_id, "mlflow-exp-renamed")
    assert client.get_experiment(experiment_id).name == "mlflow-exp-renamed"
    names = {e.name for e in mlflow.search_experiments(filter_string="name LIKE 'mlflow-exp-%'")}
    assert names == {"mlflow-exp-renamed", "mlflow-exp-b"}


def test_a_run_without_an_experiment_goes_to_default() -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("p", "1")
    assert run.info.experiment_id == "0"
    assert MlflowClient().get_experiment("0").name == "Default"
    finished = mlflow.get_run(run.info.run_id)
    assert finished.info.status == "FINISHED"
    assert finished.info.end_time is not None


def test_params_metrics_tags_and_nested_runs_round_trip(server: ServerProcess) -> None:
    mlflow.set_experiment("mlflow-logging")
    with mlflow.start_run(run_name="rf-200", tags={"team": "growth"}) as parent:
        mlflow.log_params({"n_estimators": 200, "max_depth": 8})
        mlflow.log_param("max_depth", 8)  # the same value again is fine
        with pytest.raises(MlflowException) as err:
            mlflow.log_param("max_depth", 9)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"nan": math.nan, "inf": math.inf, "ninf": -math.inf})
        mlflow.set_tag("stage", "dev")
        with mlflow.start_run(run_name="fold-1", nested=True) as child:
            mlflow.log_metric("auc", 0.91)
    run_id = parent.info.run_id

    run = mlflow.get_run(run_id)
    assert run.info.run_name == "rf-200"
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri == f"mlflow-artifacts:/{run.info.experiment_id}/{run_id}/artifacts"
    assert run.data.params == {"n_estimators": "200", "max_depth": "8"}
    metrics = run.data.metrics
    assert metrics["loss"] == pytest.approx(0.2)
    assert math.isnan(metrics["nan"])
    assert metrics["inf"] == math.inf
    assert metrics["ninf"] == -math.inf
    assert run.data.tags["team"] == "growth"
    assert run.data.tags["stage"] == "dev"

    history = MlflowClient().get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]
    child_run = mlflow.get_run(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == run_id

    # the same run, seen through modelyard's own API
    native = _native(server, f"/api/v1/runs/{run_id}")
    assert native.status_code == 200, native.text
    body = native.json()
    assert body["project"] == "default"
    assert body["status"] == "FINISHED"
    assert body["params"]["max_depth"] == "8"
    assert _native(server, f"/api/v1/runs/{child.info.run_id}").json()["parent_run_id"] == run_id


def test_a_failing_block_marks_the_run_failed() -> None:
    with pytest.raises(RuntimeError), mlflow.start_run() as run:
        raise RuntimeError("training diverged")
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"


def test_artifacts_upload_list_and_download(server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "model.bin").write_bytes(bytes(range(256)) * 1000)
    (source / "notes.txt").write_text("confusion matrix\n")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(source / "notes.txt"))
        mlflow.log_artifact(str(source / "model.bin"), artifact_path="model/weights")
        mlflow.log_artifacts(str(source), artifact_path="all")
    run_id = run.info.run_id
    client = MlflowClient()

    top = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id)}
    assert top == {("notes.txt", False, 17), ("model", True, None), ("all", True, None)}
    assert [f.path for f in client.list_artifacts(run_id, "model/weights")] == [
        "model/weights/model.bin"
    ]

    one = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="model/weights/model.bin", dst_path=str(tmp_path / "one")
    )
    assert Path(one).read_bytes() == (source / "model.bin").read_bytes()
    folder = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="all", dst_path=str(tmp_path / "dir")
        )
    )
    assert sorted(p.name for p in folder.iterdir()) == ["model.bin", "notes.txt"]
    assert (folder / "notes.txt").read_text() == "confusion matrix\n"

    # the native API sees the same files in the run's artifact namespace
    listed = _native(server, f"/api/v1/runs/{run_id}/artifacts").json()
    assert {a["path"] for a in listed} == {
        "notes.txt",
        "model/weights/model.bin",
        "all/model.bin",
        "all/notes.txt",
    }


def test_search_runs_filters_and_orders_in_a_dataframe() -> None:
    experiment_id = mlflow.set_experiment("mlflow-search").experiment_id
    for name, auc, depth in [
        ("a", 0.95, "8"),
        ("b", 0.80, "8"),
        ("c", 0.99, "8"),
        ("d", 0.97, "4"),
    ]:
        with mlflow.start_run(run_name=name):
            mlflow.log_param("max_depth", depth)
            mlflow.log_metric("auc", auc)

    frame = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string="metrics.auc > 0.9 and params.max_depth = '8'",
        order_by=["metrics.auc DESC"],
    )
    assert list(frame["tags.mlflow.runName"]) == ["c", "a"]
    assert list(frame["metrics.auc"]) == [0.99, 0.95]
    assert set(frame["status"]) == {"FINISHED"}

    every = mlflow.search_runs(
        experiment_names=["mlflow-search"], order_by=["attributes.run_name ASC"], max_results=3
    )
    assert list(every["tags.mlflow.runName"]) == ["a", "b", "c"]


def test_raw_errors_of_the_real_server(server: ServerProcess) -> None:
    base = f"{server.uri}/api/2.0/mlflow"
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    missing = httpx.get(f"{base}/runs/get", params={"run_id": "f" * 32}, headers=admin)
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    anonymous = httpx.post(f"{base}/runs/create", json={"experiment_id": "0"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error_code"] == "UNAUTHENTICATED"
