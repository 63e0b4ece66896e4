"""Every route of MLflow's ModelRegistryService, driven by the unmodified ``mlflow`` client
against a real ``modelyard server``: searches (filters, order_by, page tokens), renames,
deletes, tags, descriptions, stages, aliases and download URIs, plus MLflow's errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy import select

from modelyard.store.schema import DeploymentRevisionRow, DeploymentRow, ProjectRow
from modelyard.testing.harness import Api
from modelyard.testing.server_process import ServerProcess, running_server

pytestmark = [pytest.mark.slow]

MLFLOW = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"

MLMODEL = """\
artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
    model_path: model.pkl
    python_version: 3.11.7
mlflow_version: 3.17.2
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("mlflow-registry-surface")) as process:
        yield process


@pytest.fixture(autouse=True)
def mlflow_client_env(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.admin_token)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(server.uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # back to the default


@pytest.fixture(scope="module")
def source(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(run id, source URI) of a run holding a small MLflow model directory."""
    folder = tmp_path_factory.mktemp("model-dir") / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text(MLMODEL)
    (folder / "model.pkl").write_bytes(b"not really a pickle")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", server.uri)
        patch.setenv("MLFLOW_TRACKING_TOKEN", server.admin_token)
        client = MlflowClient(server.uri)
        run = client.create_run("0")
        client.log_artifacts(run.info.run_id, str(folder), "model")
        client.set_terminated(run.info.run_id)
    return run.info.run_id, f"runs:/{run.info.run_id}/model"


def _model(
    client: MlflowClient, name: str, versions: int, src: tuple[str, str], **tags: str
) -> None:
    client.create_registered_model(name, tags=tags or None)
    for _ in range(versions):
        client.create_model_version(name, src[1], run_id=src[0])


def _native(server: ServerProcess, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    return httpx.get(f"{server.uri}{path}", headers=headers, timeout=10)


def _invalid(call: object, *args: object, **kwargs: object) -> str:
    assert callable(call)
    with pytest.raises(MlflowException) as err:
        call(*args, **kwargs)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE", str(err.value)
    return str(err.value)


def test_search_registered_models_filters_orders_and_pages(source: tuple[str, str]) -> None:
    client = MlflowClient()
    _model(client, "srch-alpha", 1, source, team="risk")
    _model(client, "srch-beta", 0, source, team="growth")
    _model(client, "srch-gamma", 2, source, team="risk")
    _model(client, "Srch-Upper", 0, source)

    names = [m.name for m in client.search_registered_models("name LIKE 'srch-%'")]
    assert names == ["srch-alpha", "srch-beta", "srch-gamma"]  # LIKE is case-sensitive
    ilike = client.search_registered_models("name ILIKE 'srch-%'")
    assert {m.name for m in ilike} == {"srch-alpha", "srch-beta", "srch-gamma", "Srch-Upper"}
    risk = client.search_registered_models("name LIKE 'srch-%' AND tags.team = 'risk'")
    assert [m.name for m in risk] == ["srch-alpha", "srch-gamma"]
    listed = client.search_registered_models("name IN ('srch-beta', 'srch-gamma')")
    assert [m.name for m in listed] == ["srch-beta", "srch-gamma"]
    assert client.search_registered_models("name = 'srch-alpha'")[0].tags == {"team": "risk"}
    gamma = client.search_registered_models("name = 'srch-gamma'")[0]
    assert [v.version for v in gamma.latest_versions] == ["2"]

    first = client.search_registered_models(
        "name LIKE 'srch-%'", max_results=2, order_by=["name DESC"]
    )
    assert [m.name for m in first] == ["srch-gamma", "srch-beta"]
    assert first.token
    second = client.search_registered_models(
        "name LIKE 'srch-%'", max_results=2, order_by=["name DESC"], page_token=first.token
    )
    assert [m.name for m in second] == ["srch-alpha"]
    assert not second.token
    newest = client.search_registered_models(
        "name LIKE 'srch-%'", order_by=["last_updated_timestamp DESC"]
    )
    assert newest[0].name == "srch-gamma"  # its second version came last


def test_search_model_versions_filters_orders_and_pages(source: tuple[str, str]) -> None:
    client = MlflowClient()
    run_id, uri = source
    _model(client, "mv-search", 5, source)
    _model(client, "mv-other", 1, source)
    client.set_model_version_tag("mv-search", "2", "validated", "yes")

    everything = client.search_model_versions("name = 'mv-search'")
    assert [v.version for v in everything] == ["5", "4", "3", "2", "1"]  # newest update first
    pages: list[str] = []
    token = None
    while True:
        page = client.search_model_versions(
            "name = 'mv-search'", max_results=2, order_by=["version_number ASC"], page_token=token
        )
        pages.append(",".join(v.version for v in page))
        token = page.token
        if not token:
            break
    assert pages == ["1,2", "3,4", "5"]

    newer = client.search_model_versions("name = 'mv-search' AND version_number >= 4")
    assert sorted(v.version for v in newer) == ["4", "5"]
    by_run = client.search_model_versions(f"run_id = '{run_id}' AND name LIKE 'mv-%'")
    assert {v.name for v in by_run} == {"mv-search", "mv-other"}
    in_list = client.search_model_versions(f"run_id IN ('{run_id}') AND name = 'mv-other'")
    assert [(v.name, v.version) for v in in_list] == [("mv-other", "1")]
    by_source = client.search_model_versions("source_path LIKE '%/model' AND name = 'mv-other'")
    assert str(by_source[0].source).endswith("/model")
    tagged = client.search_model_versions("tags.validated = 'yes'")
    assert [(v.name, v.version, v.tags) for v in tagged] == [
        ("mv-search", "2", {"validated": "yes"})
    ]
    named = client.search_model_versions(
        "name ILIKE 'MV-%'", order_by=["name ASC", "version_number DESC"]
    )
    assert [(v.name, v.version) for v in named][:3] == [
        ("mv-other", "1"),
        ("mv-search", "5"),
        ("mv-search", "4"),
    ]
    assert uri.startswith("runs:/")


@pytest.mark.parametrize(
    ("call", "kwargs"),
    [
        ("search_registered_models", {"filter_string": "name = 'a' OR name = 'b'"}),
        ("search_registered_models", {"filter_string": "owner = 'me'"}),
        ("search_registered_models", {"filter_string": "name > 'a'"}),
        ("search_registered_models", {"filter_string": "name = "}),
        ("search_registered_models", {"order_by": ["owner ASC"]}),
        ("search_registered_models", {"order_by": ["name SIDEWAYS"]}),
        ("search_registered_models", {"order_by": ["name", "name DESC"]}),
        ("search_registered_models", {"max_results": 5000}),
        ("search_registered_models", {"page_token": "not-a-token"}),
        ("search_model_versions", {"filter_string": "version_number = 'two'"}),
        ("search_model_versions", {"filter_string": "source_path IN ('a')"}),
        ("search_model_versions", {"filter_string": "tags.k < 'v'"}),
        ("search_model_versions", {"filter_string": "metrics.auc > 1"}),
        ("search_model_versions", {"order_by": ["run_id DESC"]}),
        ("search_model_versions", {"max_results": 300_000}),
    ],
)
def test_bad_filters_and_order_by_are_invalid_parameter_values(
    call: str, kwargs: dict[str, object]
) -> None:
    _invalid(getattr(MlflowClient(), call), **kwargs)


def test_rename_moves_everything_and_shows_in_the_native_api(
    server: ServerProcess, source: tuple[str, str]
) -> None:
    client = MlflowClient()
    _model(client, "before-rename", 2, source, owner="ana")
    client.set_registered_model_alias("before-rename", "champion", "2")
    client.rename_registered_model("before-rename", "after-rename")
    renamed = client.get_registered_model("after-rename")
    assert renamed.name == "after-rename"
    assert renamed.tags == {"owner": "ana"}
    assert client.get_model_version_by_alias("after-rename", "champion").version == "2"
    assert _native(server, "/api/v1/projects/default/models/after-rename").status_code == 200
    assert _native(server, "/api/v1/projects/default/models/before-rename").status_code == 404
    with pytest.raises(MlflowException) as err:
        client.get_registered_model("before-rename")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.create_registered_model("taken-name")
    with pytest.raises(MlflowException) as err:
        client.rename_registered_model("after-rename", "taken-name")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_tags_and_descriptions_on_models_and_versions(source: tuple[str, str]) -> None:
    client = MlflowClient()
    _model(client, "tagged", 1, source)
    client.set_registered_model_tag("tagged", "team", "risk")
    client.set_registered_model_tag("tagged", "team", "fraud")  # overwrite
    client.set_registered_model_tag("tagged", "tier", "1")
    client.delete_registered_model_tag("tagged", "tier")
    client.delete_registered_model_tag("tagged", "never-set")  # a no-op, as in MLflow
    assert client.get_registered_model("tagged").tags == {"team": "fraud"}

    client.set_model_version_tag("tagged", "1", "validated", "true")
    client.set_model_version_tag("tagged", "1", "reviewer", "bo")
    client.delete_model_version_tag("tagged", "1", "reviewer")
    assert client.get_model_version("tagged", "1").tags == {"validated": "true"}
    with pytest.raises(MlflowException) as err:
        client.set_model_version_tag("tagged", "9", "k", "v")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as err:
        client.delete_registered_model_tag("no-such-model", "k")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    _invalid(client.set_registered_model_tag, "tagged", "k" * 251, "v")

    updated = client.update_registered_model("tagged", description="scores fraud")
    assert updated.description == "scores fraud"
    before = client.get_model_version("tagged", "1")
    version = client.update_model_version("tagged", "1", description="first cut")
    assert version.description == "first cut"
    assert (version.last_updated_timestamp or 0) >= (before.creation_timestamp or 0)
    assert client.get_model_version("tagged", "1").description == "first cut"


@pytest.mark.filterwarnings("ignore::FutureWarning")  # MLflow deprecates stages, still serves them
def test_stages_and_latest_versions(server: ServerProcess, source: tuple[str, str]) -> None:
    client = MlflowClient()
    _model(client, "staged", 3, source)
    moved = client.transition_model_version_stage("staged", "1", "production")
    assert moved.current_stage == "Production"
    client.transition_model_version_stage("staged", "2", "Staging")
    client.transition_model_version_stage(
        "staged", "3", "Production", archive_existing_versions=True
    )
    stages = {v.version: v.current_stage for v in client.search_model_versions("name='staged'")}
    assert stages == {"1": "Archived", "2": "Staging", "3": "Production"}
    native = _native(server, "/api/v1/projects/default/models/staged/versions/3").json()
    assert native["stage"] == "Production"
    assert native["updated_at_ms"] >= native["created_at_ms"]
    latest = client.get_latest_versions("staged", ["Production"])
    assert [v.version for v in latest] == ["3"]
    every = client.get_latest_versions("staged")
    assert {(v.current_stage, v.version) for v in every} == {
        ("Archived", "1"),
        ("Staging", "2"),
        ("Production", "3"),
    }
    model = client.get_registered_model("staged")
    assert sorted(v.version for v in model.latest_versions) == ["1", "2", "3"]
    _invalid(client.transition_model_version_stage, "staged", "1", "Shipped")
    _invalid(
        client.transition_model_version_stage, "staged", "1", "None", archive_existing_versions=True
    )
    _invalid(client.get_latest_versions, "staged", ["Shipped"])


def test_aliases_download_uri_and_deletes(server: ServerProcess, source: tuple[str, str]) -> None:
    client = MlflowClient()
    _model(client, "deletable", 2, source)
    client.set_registered_model_alias("deletable", "prod", "1")
    assert client.get_model_version_by_alias("deletable", "prod").version == "1"
    uri = client.get_model_version_download_uri("deletable", "1")
    assert uri == "mlflow-artifacts:/registry/default/deletable/1"

    message = _invalid(client.delete_model_version, "deletable", "1")
    assert "'prod'" in message
    assert client.get_model_version("deletable", "1").version == "1"  # still there
    client.delete_registered_model_alias("deletable", "prod")
    client.delete_model_version("deletable", "1")
    with pytest.raises(MlflowException) as err:
        client.get_model_version("deletable", "1")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as err:
        client.delete_model_version("deletable", "1")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    client.set_registered_model_alias("deletable", "prod", "2")
    client.delete_registered_model("deletable")  # its aliases go with it
    with pytest.raises(MlflowException) as err:
        client.get_registered_model("deletable")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert _native(server, "/api/v1/projects/default/models/deletable").status_code == 404
    client.create_registered_model("deletable")  # the name is free again
    assert client.get_registered_model("deletable").latest_versions == []


def test_writes_are_audited_and_need_their_roles(
    server: ServerProcess, source: tuple[str, str]
) -> None:
    client = MlflowClient()
    _model(client, "audited", 1, source)
    client.set_registered_model_tag("audited", "k", "v")
    client.rename_registered_model("audited", "audited-2")
    audit = _native(server, "/api/v1/audit?project=default").json()
    actions = {(a["action"], a["target"]) for a in audit if a["outcome"] == "ok"}
    assert ("mlflow.registered_model.set_tag", "model:audited tag:k") in actions
    assert ("mlflow.registered_model.rename", "model:audited -> model:audited-2") in actions

    admin = {"Authorization": f"Bearer {server.admin_token}"}
    base = f"{server.uri}/api/2.0/mlflow"
    issued = httpx.post(
        f"{server.uri}/api/v1/tokens",
        json={"name": "editor-only", "project": "default", "role": "editor"},
        headers=admin,
    )
    assert issued.status_code == 201, issued.text
    editor = {"Authorization": f"Bearer {issued.json()['token']}"}
    tag = {"name": "audited-2", "key": "by", "value": "editor"}
    assert httpx.post(f"{base}/registered-models/set-tag", json=tag, headers=editor).is_success
    gone = httpx.request(
        "DELETE", f"{base}/registered-models/delete", json={"name": "audited-2"}, headers=editor
    )
    assert gone.status_code == 403  # deletes need the admin role, as on the native API
    assert gone.json()["error_code"] == "PERMISSION_DENIED"


def test_what_a_live_deployment_serves_is_not_deleted_or_renamed(api: Api) -> None:
    """In process (no deployment controller runs): the deployment rows are written
    directly, and the refusal names the deployment."""
    admin = api.as_admin()
    run = api.client.post(f"{MLFLOW}/runs/create", json={"experiment_id": "0"}, headers=admin)
    run_id = run.json()["run"]["info"]["run_id"]
    for name, content in (("MLmodel", MLMODEL.encode()), ("model.pkl", b"bytes")):
        put = api.client.put(
            f"{ARTIFACTS}/0/{run_id}/artifacts/model/{name}", content=content, headers=admin
        )
        assert put.status_code == 200, put.text
    created = api.client.post(
        f"{MLFLOW}/registered-models/create", json={"name": "served"}, headers=admin
    )
    assert created.status_code == 200, created.text
    for _ in range(2):
        body = {"name": "served", "source": f"runs:/{run_id}/model"}
        made = api.client.post(f"{MLFLOW}/model-versions/create", json=body, headers=admin)
        assert made.status_code == 200, made.text
    with api.ctx.store.sql.transaction() as s:
        project = s.scalar(select(ProjectRow).where(ProjectRow.name == "default"))
        assert project is not None
        deployment = DeploymentRow(
            project_id=project.id,
            name="served-api",
            config_json="{}",
            status="active",
            stable_revision=1,
            created_by="admin",
            created_at_ms=0,
            updated_at_ms=0,
        )
        s.add(deployment)
        s.flush()
        s.add(
            DeploymentRevisionRow(
                deployment_id=deployment.id,
                number=1,
                model_name="served",
                model_version=2,
                model_ref="served:2",
                settings_json="{}",
                state="ready",
                weight=100,
                created_at_ms=0,
            )
        )

    def refused(method: str, path: str, body: dict[str, str]) -> None:
        response = api.client.request(method, f"{MLFLOW}/{path}", json=body, headers=admin)
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "'served-api'" in response.json()["message"]

    refused("DELETE", "model-versions/delete", {"name": "served", "version": "2"})
    refused("DELETE", "registered-models/delete", {"name": "served"})
    refused("POST", "registered-models/rename", {"name": "served", "new_name": "served-2"})
    native = api.client.delete("/api/v1/projects/default/models/served/versions/2", headers=admin)
    assert native.status_code == 409, native.text  # the native API's own code for it
    gone = api.client.request(
        "DELETE",
        f"{MLFLOW}/model-versions/delete",
        json={"name": "served", "version": "1"},
        headers=admin,
    )
    assert gone.status_code == 200, gone.text  # version 1 is not served
