"""MLflow 3 logged models and the MLflow registry routes, with raw HTTP in process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
from httpx import Response
from sklearn.linear_model import LogisticRegression

from modelyard.core.entities import Role
from modelyard.models import load_model
from modelyard.testing.harness import Api

MLFLOW = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
MLMODEL = """\
artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
    model_path: model.pkl
    python_version: 3.11.7
  sklearn:
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.5.0
mlflow_version: 3.17.2
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
"""


def _ok(response: Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _error(response: Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code, response.json()
    message: str = response.json()["message"]
    return message


def _run(api: Api) -> str:
    body = _ok(
        api.client.post(
            f"{MLFLOW}/runs/create", json={"experiment_id": "0"}, headers=api.as_admin()
        )
    )
    return str(body["run"]["info"]["run_id"])


def _logged_model(api: Api, run_id: str, name: str = "model", **extra: object) -> Any:
    body = {"experiment_id": "0", "name": name, "source_run_id": run_id, **extra}
    response = api.client.post(f"{MLFLOW}/logged-models", json=body, headers=api.as_admin())
    return _ok(response)["model"]


def _trained() -> tuple[LogisticRegression, np.ndarray]:
    features = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    return LogisticRegression().fit(features, [0, 1, 0, 1]), features


def _upload_model(api: Api, base: str, estimator: LogisticRegression) -> None:
    for name, content in (
        ("MLmodel", MLMODEL.encode()),
        ("model.pkl", cloudpickle.dumps(estimator)),
    ):
        response = api.client.put(
            f"{ARTIFACTS}/{base}/{name}", content=content, headers=api.as_admin()
        )
        assert response.status_code == 200, response.text


def test_logged_model_lifecycle_and_json(api: Api) -> None:
    run_id = _run(api)
    created = _logged_model(
        api, run_id, params=[{"key": "C", "value": "1.0"}], tags=[{"key": "team", "value": "a"}]
    )
    info = created["info"]
    model_id = info["model_id"]
    assert model_id.startswith("m-")
    assert len(model_id) == 34
    assert info["experiment_id"] == "0"
    assert info["source_run_id"] == run_id
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/0/models/{model_id}/artifacts"
    assert info["tags"] == [{"key": "team", "value": "a"}]
    assert created["data"]["params"] == [{"key": "C", "value": "1.0"}]

    url, admin = f"{MLFLOW}/logged-models/{model_id}", api.as_admin()
    done = _ok(api.client.patch(url, json={"status": "LOGGED_MODEL_READY"}, headers=admin))
    assert done["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    _error(
        api.client.patch(url, json={"status": "DONE"}, headers=admin),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    tags = [{"key": "x", "value": "1"}, {"key": "team", "value": "b"}]
    _ok(api.client.patch(f"{url}/tags", json={"tags": tags}, headers=admin))
    _ok(api.client.delete(f"{url}/tags/x", headers=admin))
    _error(api.client.delete(f"{url}/tags/x", headers=admin), 404, "RESOURCE_DOES_NOT_EXIST")
    _ok(
        api.client.post(
            f"{url}/params", json={"params": [{"key": "k", "value": "v"}]}, headers=admin
        )
    )
    got = _ok(api.client.get(url, headers=admin))["model"]
    assert got["info"]["tags"] == [{"key": "team", "value": "b"}]
    assert {"key": "k", "value": "v"} in got["data"]["params"]
    missing = api.client.get(f"{MLFLOW}/logged-models/m-{'0' * 32}", headers=admin)
    _error(missing, 404, "RESOURCE_DOES_NOT_EXIST")


def test_a_logged_model_must_be_in_its_runs_experiment(api: Api) -> None:
    other = _ok(
        api.client.post(f"{MLFLOW}/experiments/create", json={"name": "e"}, headers=api.as_admin())
    )
    body = {"experiment_id": other["experiment_id"], "name": "m", "source_run_id": _run(api)}
    response = api.client.post(f"{MLFLOW}/logged-models", json=body, headers=api.as_admin())
    _error(response, 400, "INVALID_PARAMETER_VALUE")


def test_search_filters_by_name_and_run_and_pages(api: Api) -> None:
    run_a, run_b = _run(api), _run(api)
    ids = [
        _logged_model(api, run_a)["info"]["model_id"],
        _logged_model(api, run_b)["info"]["model_id"],
    ]
    _logged_model(api, run_a, name="other")
    search, admin = f"{MLFLOW}/logged-models/search", api.as_admin()

    def found(**body: object) -> Any:
        return _ok(api.client.post(search, json={"experiment_ids": ["0"], **body}, headers=admin))

    named = found(filter="name = 'model'")["models"]
    assert sorted(m["info"]["model_id"] for m in named) == sorted(ids)
    both = found(filter=f"name = 'model' AND source_run_id = '{run_a}'")["models"]
    assert [m["info"]["model_id"] for m in both] == [ids[0]]
    first = found(filter="name = 'model'", max_results=1)
    assert len(first["models"]) == 1
    second = found(filter="name = 'model'", max_results=1, page_token=first["next_page_token"])
    assert "next_page_token" not in second
    assert {first["models"][0]["info"]["model_id"], second["models"][0]["info"]["model_id"]} == set(
        ids
    )
    bad = api.client.post(
        search, json={"experiment_ids": ["0"], "filter": "metrics.auc > 1"}, headers=admin
    )
    assert "metrics.auc > 1" in _error(bad, 400, "INVALID_PARAMETER_VALUE")


def test_logged_model_files_go_through_the_artifact_routes(api: Api) -> None:
    model_id = _logged_model(api, _run(api))["info"]["model_id"]
    estimator, _features = _trained()
    _upload_model(api, f"0/models/{model_id}/artifacts", estimator)
    listed = _ok(
        api.client.get(
            ARTIFACTS, params={"path": f"0/models/{model_id}/artifacts"}, headers=api.as_admin()
        )
    )
    assert [f["path"] for f in listed["files"]] == ["MLmodel", "model.pkl"]
    got = api.client.get(
        f"{ARTIFACTS}/0/models/{model_id}/artifacts/MLmodel", headers=api.as_admin()
    )
    assert got.content == MLMODEL.encode()
    wrong = api.client.get(
        f"{ARTIFACTS}/7/models/{model_id}/artifacts/MLmodel", headers=api.as_admin()
    )
    _error(wrong, 404, "RESOURCE_DOES_NOT_EXIST")


def test_a_registered_logged_model_is_a_verified_modelyard_version(
    api: Api, tmp_path: Path
) -> None:
    run_id = _run(api)
    model_id = _logged_model(api, run_id)["info"]["model_id"]
    estimator, features = _trained()
    _upload_model(api, f"0/models/{model_id}/artifacts", estimator)
    admin = api.as_admin()
    _ok(api.client.post(f"{MLFLOW}/registered-models/create", json={"name": "wire"}, headers=admin))
    body = {"name": "wire", "source": f"models:/{model_id}", "model_id": model_id}
    version = _ok(api.client.post(f"{MLFLOW}/model-versions/create", json=body, headers=admin))[
        "model_version"
    ]
    assert version["version"] == "1"
    assert version["status"] == "READY"
    assert version["run_id"] == run_id
    assert version["model_id"] == model_id
    assert version["current_stage"] == "None"

    native = api.client.get("/api/v1/projects/default/models/wire/versions/1", headers=admin).json()
    files = {f["path"]: f["digest"] for f in native["files"]}
    assert set(files) == {"modelyard.yaml", "mlflow_model/MLmodel", "mlflow_model/model.pkl"}
    assert native["flavor"] == "mlflow"
    assert native["source_run_id"] == run_id
    package = tmp_path / "package"
    for path in files:
        dest = package / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        url = f"/api/v1/projects/default/models/wire/versions/1/files/{path}"
        dest.write_bytes(api.client.get(url, headers=admin).content)
    expected = {p: d for p, d in files.items() if p != "modelyard.yaml"}
    loaded = load_model(package, expected_files=expected)
    assert loaded.manifest.flavor_config["loader"] == "sklearn"
    assert loaded.signature is not None
    np.testing.assert_array_equal(loaded.predict(features), estimator.predict(features))

    uri = _ok(
        api.client.get(
            f"{MLFLOW}/model-versions/get-download-uri",
            params={"name": "wire", "version": "1"},
            headers=admin,
        )
    )
    assert uri["artifact_uri"] == "mlflow-artifacts:/registry/default/wire/1"
    root = "registry/default/wire/1"
    listed = _ok(api.client.get(ARTIFACTS, params={"path": root}, headers=admin))["files"]
    assert [f["path"] for f in listed] == ["MLmodel", "model.pkl"]
    assert api.client.get(f"{ARTIFACTS}/{root}/MLmodel", headers=admin).content == MLMODEL.encode()
    put = api.client.put(f"{ARTIFACTS}/{root}/MLmodel", content=b"x", headers=admin)
    _error(put, 400, "INVALID_PARAMETER_VALUE")
    _error(
        api.client.delete(f"{ARTIFACTS}/{root}/MLmodel", headers=admin),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_a_run_folder_registers_too(api: Api) -> None:
    run_id = _run(api)
    estimator, _features = _trained()
    _upload_model(api, f"0/{run_id}/artifacts/model", estimator)
    admin = api.as_admin()
    _ok(
        api.client.post(
            f"{MLFLOW}/registered-models/create", json={"name": "legacy"}, headers=admin
        )
    )
    for source in (f"runs:/{run_id}/model", f"mlflow-artifacts:/0/{run_id}/artifacts/model"):
        body = {"name": "legacy", "source": source, "run_id": run_id}
        version = _ok(api.client.post(f"{MLFLOW}/model-versions/create", json=body, headers=admin))
        assert version["model_version"]["source"] == source
        assert "model_id" not in version["model_version"]
    empty = {"name": "legacy", "source": f"runs:/{run_id}/nothing"}
    _error(
        api.client.post(f"{MLFLOW}/model-versions/create", json=empty, headers=admin),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    s3 = {"name": "legacy", "source": "s3://bucket/model"}
    _error(
        api.client.post(f"{MLFLOW}/model-versions/create", json=s3, headers=admin),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_aliases_and_registry_errors(api: Api) -> None:
    run_id = _run(api)
    estimator, _features = _trained()
    _upload_model(api, f"0/{run_id}/artifacts/model", estimator)
    admin = api.as_admin()
    create = f"{MLFLOW}/registered-models/create"
    _ok(api.client.post(create, json={"name": "churn"}, headers=admin))
    _error(
        api.client.post(create, json={"name": "churn"}, headers=admin),
        400,
        "RESOURCE_ALREADY_EXISTS",
    )
    unknown = {"name": "nope", "source": f"runs:/{run_id}/model"}
    _error(
        api.client.post(f"{MLFLOW}/model-versions/create", json=unknown, headers=admin),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    body = {"name": "churn", "source": f"runs:/{run_id}/model"}
    _ok(api.client.post(f"{MLFLOW}/model-versions/create", json=body, headers=admin))

    alias = f"{MLFLOW}/registered-models/alias"
    _ok(
        api.client.post(
            alias, json={"name": "churn", "alias": "prod", "version": "1"}, headers=admin
        )
    )
    missing = {"name": "churn", "alias": "prod", "version": "2"}
    _error(api.client.post(alias, json=missing, headers=admin), 404, "RESOURCE_DOES_NOT_EXIST")
    bad = {"name": "churn", "alias": "prod", "version": "one"}
    _error(api.client.post(alias, json=bad, headers=admin), 400, "INVALID_PARAMETER_VALUE")
    got = _ok(api.client.get(alias, params={"name": "churn", "alias": "prod"}, headers=admin))
    assert got["model_version"]["aliases"] == ["prod"]
    latest = _ok(api.client.get(alias, params={"name": "churn", "alias": "latest"}, headers=admin))
    assert latest["model_version"]["version"] == "1"
    model = _ok(
        api.client.get(f"{MLFLOW}/registered-models/get", params={"name": "churn"}, headers=admin)
    )
    assert model["registered_model"]["aliases"] == [{"alias": "prod", "version": "1"}]
    assert [v["version"] for v in model["registered_model"]["latest_versions"]] == ["1"]
    versions = _ok(
        api.client.post(
            f"{MLFLOW}/registered-models/get-latest-versions", json={"name": "churn"}, headers=admin
        )
    )
    assert [v["version"] for v in versions["model_versions"]] == ["1"]

    for _ in range(2):  # deleting an absent alias is a no-op, as in MLflow
        _ok(
            api.client.request(
                "DELETE", alias, json={"name": "churn", "alias": "prod"}, headers=admin
            )
        )
    gone = api.client.get(alias, params={"name": "churn", "alias": "prod"}, headers=admin)
    assert _error(gone, 400, "INVALID_PARAMETER_VALUE") == "Registered model alias prod not found."
    no_model = api.client.get(alias, params={"name": "nope", "alias": "prod"}, headers=admin)
    _error(no_model, 404, "RESOURCE_DOES_NOT_EXIST")
    history = api.client.get("/api/v1/projects/default/models/churn/history", headers=admin).json()
    assert [(h["from_version"], h["to_version"]) for h in history] == [(None, 1), (1, None)]
    audit = api.client.get("/api/v1/audit", params={"project": "default"}, headers=admin).json()
    moves = [
        a["target"] for a in audit if a["action"] == "mlflow.alias.set" and a["outcome"] == "ok"
    ]
    assert moves == ["model:churn alias:prod None -> 1"]

    viewer = api.auth(api.token_for("vic", Role.VIEWER))
    _error(api.client.post(create, json={"name": "v"}, headers=viewer), 403, "PERMISSION_DENIED")
    _error(
        api.client.post(
            alias, json={"name": "churn", "alias": "a", "version": "1"}, headers=viewer
        ),
        403,
        "PERMISSION_DENIED",
    )
    _ok(
        api.client.get(
            f"{MLFLOW}/model-versions/get", params={"name": "churn", "version": "1"}, headers=viewer
        )
    )
    listed = api.client.get(ARTIFACTS, params={"path": "registry/default/churn/1"}, headers=viewer)
    assert listed.status_code == 200, listed.text


@pytest.mark.parametrize("path", ["registry/default/churn", "0/models", "x/y/artifacts"])
def test_malformed_artifact_paths_are_invalid(api: Api, path: str) -> None:
    response = api.client.get(ARTIFACTS, params={"path": path}, headers=api.as_admin())
    _error(response, 400, "INVALID_PARAMETER_VALUE")
