"""The tracking routes added for the whole MLflow surface, driven by the unmodified
``mlflow`` client against a real ``modelyard server`` process: deleting and restoring,
tag removal, dataset inputs (and the lineage edge they make), model outputs, bulk metric
history, logged-model deletion, and the NOT_IMPLEMENTED answer of the trace routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelOutput, Run, ViewType
from mlflow.exceptions import MlflowException

from modelyard.client import ModelyardClient
from modelyard.data.add import add_dataset
from modelyard.testing.server_process import ServerProcess, running_server

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("mlflow-surface")) as process:
        yield process


@pytest.fixture(autouse=True)
def mlflow_client_env(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
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


def _http(server: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=server.uri,
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=10,
    )


def _code(err: pytest.ExceptionInfo[MlflowException]) -> str:
    return str(err.value.error_code)


def _inputs(run: Run) -> list[DatasetInput]:
    assert run.inputs is not None
    return list(run.inputs.dataset_inputs)


def test_experiments_are_deleted_restored_and_lose_tags() -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment("surface-del", tags={"team": "a", "tmp": "x"})
    client.delete_experiment_tag(experiment_id, "tmp")
    assert client.get_experiment(experiment_id).tags == {"team": "a"}
    with pytest.raises(MlflowException) as err:
        client.delete_experiment_tag(experiment_id, "tmp")
    assert _code(err) == "RESOURCE_DOES_NOT_EXIST"

    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert experiment_id in {e.experiment_id for e in deleted}
    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_runs_are_deleted_restored_and_lose_tags() -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment("surface-runs")
    run = client.create_run(experiment_id, tags={"keep": "1", "drop": "2"})
    run_id = run.info.run_id
    client.delete_tag(run_id, "drop")
    tags = client.get_run(run_id).data.tags
    assert tags["keep"] == "1"
    assert "drop" not in tags
    with pytest.raises(MlflowException) as err:
        client.delete_tag(run_id, "drop")
    assert _code(err) == "RESOURCE_DOES_NOT_EXIST"

    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([experiment_id]) == []
    gone = client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in gone] == [run_id]
    client.restore_run(run_id)
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [run_id]


# mlflow 3.17.2's pandas digest calls DataFrame.all positionally, which pandas deprecates.
@pytest.mark.filterwarnings("ignore:Starting with pandas version 4.0")
def test_log_input_of_a_modelyard_dataset_makes_a_lineage_edge(
    server: ServerProcess, tmp_path: Path
) -> None:
    src = tmp_path / "churn"
    src.mkdir()
    pd.DataFrame({"x": [1.0, 2.0, 3.0]}).to_parquet(src / "t.parquet")
    with ModelyardClient(server.uri, server.admin_token) as native:
        added = add_dataset(native, "default", src, "churn")
    assert added.version.ref == "churn@v1"

    mlflow.set_experiment("surface-inputs")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    ours = from_pandas(frame, name="churn@v1")
    theirs = from_pandas(frame, name="elsewhere")
    with mlflow.start_run() as run:
        mlflow.log_input(ours, context="training")
        mlflow.log_input(theirs, context="eval", tags={"split": "test"})
    run_id = run.info.run_id

    inputs = _inputs(MlflowClient().get_run(run_id))
    by_name = {i.dataset.name: i for i in inputs}
    assert set(by_name) == {"churn@v1", "elsewhere"}
    assert by_name["churn@v1"].dataset.digest == ours.digest
    assert by_name["churn@v1"].dataset.source_type == "code"
    assert {t.key: t.value for t in by_name["elsewhere"].tags} == {
        "mlflow.data.context": "eval",
        "split": "test",
    }
    found = mlflow.search_runs(output_format="list", experiment_names=["surface-inputs"])
    assert len(_inputs(found[0])) == 2

    with _http(server) as http:
        graph = http.get(f"/api/v1/projects/default/lineage/run/{run_id}").json()
        datasets = http.post(
            "/api/2.0/mlflow/experiments/search-datasets",
            json={"experiment_ids": [run.info.experiment_id]},
        ).json()
    edges = {(e["src"], e["dst"], e["type"]) for e in graph["edges"]}
    sources = {e[0] for e in edges if e[1] == f"run:{run_id}" and e[2] == "input"}
    assert len(sources) == 1
    labels = {n["key"]: n["label"] for n in graph["nodes"]}
    assert "churn" in labels[next(iter(sources))]
    summaries = {(d["name"], d.get("context")) for d in datasets["dataset_summaries"]}
    assert summaries == {("churn@v1", "training"), ("elsewhere", "eval")}


def test_log_inputs_checks_its_input() -> None:
    client = MlflowClient()
    run = client.create_run(client.create_experiment("surface-bad-inputs"))
    long_name = Dataset(name="n" * 501, digest="abc", source_type="code", source="{}")
    with pytest.raises(MlflowException) as err:
        client.log_inputs(run.info.run_id, [DatasetInput(long_name, [])])
    assert _code(err) == "INVALID_PARAMETER_VALUE"
    ok = Dataset(name="fine", digest="abc", source_type="code", source="{}")
    client.log_inputs(run.info.run_id, [DatasetInput(ok, [InputTag("k", "v")])])
    client.log_inputs(run.info.run_id, [DatasetInput(ok, [InputTag("k", "w")])])
    (only,) = _inputs(client.get_run(run.info.run_id))
    assert [(t.key, t.value) for t in only.tags] == [("k", "w")]


def test_outputs_and_deleting_a_logged_model() -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment("surface-models")
    run = client.create_run(experiment_id)
    model = client.create_logged_model(experiment_id, name="m", source_run_id=run.info.run_id)
    client.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, step=3)])
    outputs = client.get_run(run.info.run_id).outputs
    assert outputs is not None
    assert [(o.model_id, o.step) for o in outputs.model_outputs] == [(model.model_id, 3)]

    client.delete_logged_model(model.model_id)
    with pytest.raises(MlflowException) as err:
        client.get_logged_model(model.model_id)
    assert _code(err) == "RESOURCE_DOES_NOT_EXIST"


def test_bulk_interval_history_samples_steps(server: ServerProcess) -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment("surface-bulk")
    runs = [client.create_run(experiment_id).info.run_id for _ in range(2)]
    for run_id in runs:
        for step in range(10):
            client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
    params: dict[str, str | int | list[str]] = {
        "run_ids": runs,
        "metric_key": "loss",
        "max_results": 4,
    }
    with _http(server) as http:
        sampled = http.get("/api/2.0/mlflow/metrics/get-history-bulk-interval", params=params)
        window = http.get(
            "/api/2.0/mlflow/metrics/get-history-bulk-interval",
            params={**params, "start_step": 2, "end_step": 5, "max_results": 10},
        )
        bad = http.get(
            "/api/2.0/mlflow/metrics/get-history-bulk-interval",
            params={**params, "start_step": 2},
        )
    assert sampled.status_code == 200, sampled.text
    by_run: dict[str, list[int]] = {}
    for m in sampled.json()["metrics"]:
        by_run.setdefault(m["run_id"], []).append(m["step"])
    assert list(by_run) == runs
    assert all(steps[0] == 0 and steps[-1] == 9 and len(steps) == 4 for steps in by_run.values())
    steps = sorted({m["step"] for m in window.json()["metrics"]})
    assert steps == [2, 3, 4, 5]
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_list_artifacts_of_a_run(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "a.txt"), artifact_path="dir")
    with _http(server) as http:
        top = http.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id})
        inner = http.get(
            "/api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id, "path": "dir"}
        )
    assert top.json() == {
        "root_uri": run.info.artifact_uri,
        "files": [{"path": "dir", "is_dir": True}],
    }
    assert inner.json()["files"] == [{"path": "dir/a.txt", "is_dir": False, "file_size": 1}]


def test_log_model_appends_to_the_history_tag(server: ServerProcess) -> None:
    client = MlflowClient()
    run = client.create_run(client.create_experiment("surface-log-model"))
    model = '{"artifact_path": "m", "flavors": {"python_function": {}}, "utc_time_created": "x"}'
    with _http(server) as http:
        ok = http.post(
            "/api/2.0/mlflow/runs/log-model",
            json={"run_id": run.info.run_id, "model_json": model},
        )
        bad = http.post(
            "/api/2.0/mlflow/runs/log-model",
            json={"run_id": run.info.run_id, "model_json": '{"flavors": {}}'},
        )
    assert ok.status_code == 200, ok.text
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    history = client.get_run(run.info.run_id).data.tags["mlflow.log-model.history"]
    assert '"artifact_path": "m"' in history


def test_traces_are_not_implemented_as_documented() -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment("surface-traces")
    with pytest.raises(MlflowException) as err:
        client.search_traces(locations=[experiment_id])
    assert _code(err) == "NOT_IMPLEMENTED"
    with pytest.raises(MlflowException) as err:
        client.get_trace("tr-0123456789abcdef")
    assert _code(err) == "NOT_IMPLEMENTED"


def test_search_experiments_filters_and_orders() -> None:
    client = MlflowClient()
    ids = {
        name: client.create_experiment(name, tags={"team": team})
        for name, team in (("xs-b", "core"), ("xs-a", "core"), ("xs-c", "ads"))
    }
    names = [e.name for e in client.search_experiments(filter_string="name LIKE 'xs-%'")]
    assert names == ["xs-b", "xs-a", "xs-c"]  # by id without order_by
    ordered = client.search_experiments(
        filter_string="name ILIKE 'XS-%' AND tags.team = 'core'", order_by=["name DESC"]
    )
    assert [e.experiment_id for e in ordered] == [ids["xs-b"], ids["xs-a"]]
    first = client.search_experiments(
        filter_string="attributes.name != 'xs-c' AND name LIKE 'xs-%'",
        order_by=["creation_time DESC", "name"],
        max_results=1,
    )
    assert len(first) == 1
    assert first.token
    rest = client.search_experiments(
        filter_string="attributes.name != 'xs-c' AND name LIKE 'xs-%'",
        order_by=["creation_time DESC", "name"],
        max_results=1,
        page_token=first.token,
    )
    assert {first[0].name, rest[0].name} == {"xs-a", "xs-b"}
    with pytest.raises(MlflowException) as err:
        client.search_experiments(filter_string="owner = 'x'")
    assert _code(err) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as err:
        client.search_experiments(order_by=["colour"])
    assert _code(err) == "INVALID_PARAMETER_VALUE"
