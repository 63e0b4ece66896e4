"""MLflow's wire format and error codes, with raw HTTP against the in-process app."""

from __future__ import annotations

import json
import math

import pytest

from modelyard.core.entities import Role
from modelyard.testing.harness import Api

MLFLOW = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def _new_run(api: Api, experiment_id: str = "0") -> str:
    response = api.client.post(
        f"{MLFLOW}/runs/create",
        json={"experiment_id": experiment_id, "run_name": "r", "tags": [{"key": "k"}]},
        headers=api.as_admin(),
    )
    assert response.status_code == 200, response.text
    run_id: str = response.json()["run"]["info"]["run_id"]
    return run_id


def _error(response: object, status: int, code: str) -> str:
    assert getattr(response, "status_code", None) == status, getattr(response, "text", "")
    body = response.json()  # type: ignore[attr-defined]
    assert body["error_code"] == code, body
    message: str = body["message"]
    return message


def test_run_info_has_mlflow_fields(api: Api) -> None:
    run_id = _new_run(api)
    run = api.client.get(
        f"{MLFLOW}/runs/get", params={"run_id": run_id, "run_uuid": run_id}, headers=api.as_admin()
    ).json()["run"]
    info = run["info"]
    assert info["run_id"] == info["run_uuid"] == run_id
    assert info["experiment_id"] == "0"
    assert info["status"] == "RUNNING"
    assert info["lifecycle_stage"] == "active"
    assert info["artifact_uri"] == f"mlflow-artifacts:/0/{run_id}/artifacts"
    assert "end_time" not in info
    assert {"key": "k", "value": ""} in run["data"]["tags"]


def test_non_finite_metrics_are_accepted_as_tokens_or_strings_and_returned_as_strings(
    api: Api,
) -> None:
    run_id = _new_run(api)
    metrics = [
        {"key": "a", "value": math.nan, "timestamp": 1},  # json.dumps writes a bare NaN
        {"key": "b", "value": "Infinity", "timestamp": 1, "step": "2"},
        {"key": "c", "value": "-Infinity", "timestamp": 1},
    ]
    raw = json.dumps({"run_id": run_id, "metrics": metrics})
    assert '"value": NaN' in raw
    headers = {**api.as_admin(), "content-type": "application/json"}
    logged = api.client.post(f"{MLFLOW}/runs/log-batch", content=raw, headers=headers)
    assert logged.status_code == 200, logged.text
    text = api.client.get(f"{MLFLOW}/runs/get", params={"run_id": run_id}, headers=headers).text
    metrics = {m["key"]: m for m in json.loads(text)["run"]["data"]["metrics"]}
    assert [metrics[k]["value"] for k in "abc"] == ["NaN", "Infinity", "-Infinity"]
    assert metrics["b"]["step"] == 2
    assert "NaN," not in text.replace('"NaN"', "")  # no bare tokens: MLflow's client rejects them


@pytest.mark.parametrize("value", ["abc", True, {"x": 1}, None, [1.0]])
def test_a_metric_value_that_is_not_a_number_is_invalid(api: Api, value: object) -> None:
    run_id = _new_run(api)
    response = api.client.post(
        f"{MLFLOW}/runs/log-metric",
        json={"run_id": run_id, "key": "loss", "value": value, "timestamp": 1},
        headers=api.as_admin(),
    )
    assert "value" in _error(response, 400, "INVALID_PARAMETER_VALUE")


def test_unknown_fields_are_ignored(api: Api) -> None:
    run_id = _new_run(api)
    response = api.client.post(
        f"{MLFLOW}/runs/log-metric",
        json={"run_id": run_id, "key": "k", "value": 1, "timestamp": 5, "model_id": "m", "x": 1},
        headers=api.as_admin(),
    )
    assert response.status_code == 200
    assert response.json() == {}


def test_unknown_run_and_experiment_do_not_exist(api: Api) -> None:
    admin = api.as_admin()
    missing = api.client.get(f"{MLFLOW}/runs/get", params={"run_id": "0" * 32}, headers=admin)
    _error(missing, 404, "RESOURCE_DOES_NOT_EXIST")
    log = api.client.post(
        f"{MLFLOW}/runs/log-parameter", json={"run_id": "0" * 32, "key": "a"}, headers=admin
    )
    _error(log, 404, "RESOURCE_DOES_NOT_EXIST")
    by_name = api.client.get(
        f"{MLFLOW}/experiments/get-by-name", params={"experiment_name": "nope"}, headers=admin
    )
    _error(by_name, 404, "RESOURCE_DOES_NOT_EXIST")
    experiment = api.client.get(
        f"{MLFLOW}/experiments/get", params={"experiment_id": "999"}, headers=admin
    )
    _error(experiment, 404, "RESOURCE_DOES_NOT_EXIST")
    _error(api.client.get(f"{MLFLOW}/no/such/route", headers=admin), 404, "ENDPOINT_NOT_FOUND")


def test_malformed_and_incomplete_bodies_are_rejected(api: Api) -> None:
    headers = {**api.as_admin(), "content-type": "application/json"}
    broken = api.client.post(f"{MLFLOW}/experiments/create", content="{", headers=headers)
    _error(broken, 400, "INVALID_PARAMETER_VALUE")
    nameless = api.client.post(f"{MLFLOW}/experiments/create", json={}, headers=headers)
    assert "name" in _error(nameless, 400, "INVALID_PARAMETER_VALUE")
    run_id = _new_run(api)
    too_many = api.client.post(
        f"{MLFLOW}/runs/log-batch",
        json={"run_id": run_id, "params": [{"key": f"p{i}", "value": "1"} for i in range(101)]},
        headers=headers,
    )
    assert "params" in _error(too_many, 400, "INVALID_PARAMETER_VALUE")


def test_existing_experiment_name_is_resource_already_exists(api: Api) -> None:
    body = {"name": "dup"}
    first = api.client.post(f"{MLFLOW}/experiments/create", json=body, headers=api.as_admin())
    assert first.status_code == 200
    assert first.json()["experiment_id"].isdigit()
    again = api.client.post(f"{MLFLOW}/experiments/create", json=body, headers=api.as_admin())
    _error(again, 400, "RESOURCE_ALREADY_EXISTS")


def test_authentication_and_roles(api: Api) -> None:
    anonymous = api.client.post(f"{MLFLOW}/runs/create", json={"experiment_id": "0"})
    _error(anonymous, 401, "UNAUTHENTICATED")
    viewer = api.auth(api.token_for("vera", Role.VIEWER))
    created = api.client.post(f"{MLFLOW}/runs/create", json={"experiment_id": "0"}, headers=viewer)
    _error(created, 403, "PERMISSION_DENIED")
    experiment = api.client.post(f"{MLFLOW}/experiments/create", json={"name": "x"}, headers=viewer)
    _error(experiment, 403, "PERMISSION_DENIED")
    _new_run(api)
    searched = api.client.post(
        f"{MLFLOW}/runs/search", json={"experiment_ids": ["0"]}, headers=viewer
    )
    assert searched.status_code == 200
    assert len(searched.json()["runs"]) == 1


def test_a_project_scoped_token_works_in_its_project(api: Api) -> None:
    admin = api.as_admin()
    api.client.post("/api/v1/projects", json={"name": "vision"}, headers=admin)
    api.token_for("ed", Role.EDITOR, project="vision")
    caller = api.ctx.auth.authenticate(api.admin_token)
    scoped = api.ctx.auth.create_token(caller, name="ci", user="ed", project="vision")
    headers = api.auth(scoped.plaintext)
    created = api.client.post(f"{MLFLOW}/experiments/create", json={"name": "cnn"}, headers=headers)
    assert created.status_code == 200, created.text
    experiment_id = int(created.json()["experiment_id"])
    assert api.ctx.tracking.get_experiment(caller, experiment_id).project == "vision"
    default_run = api.client.post(
        f"{MLFLOW}/runs/create", json={"experiment_id": "0"}, headers=headers
    )
    _error(default_run, 403, "PERMISSION_DENIED")


def test_deleted_runs_and_experiments_leave_default_searches(api: Api) -> None:
    admin = api.as_admin()
    run_id = _new_run(api)
    api.client.post(f"{MLFLOW}/runs/delete", json={"run_id": run_id}, headers=admin)

    def search(view: str) -> list[str]:
        body = {"experiment_ids": ["0"], "run_view_type": view}
        runs = api.client.post(f"{MLFLOW}/runs/search", json=body, headers=admin).json()
        return [r["info"]["run_id"] for r in runs.get("runs", [])]

    assert search("ACTIVE_ONLY") == []
    assert search("DELETED_ONLY") == [run_id]
    api.client.post(f"{MLFLOW}/runs/restore", json={"run_id": run_id}, headers=admin)
    assert search("ACTIVE_ONLY") == [run_id]
    default = api.client.post(
        f"{MLFLOW}/experiments/delete", json={"experiment_id": "0"}, headers=admin
    )
    _error(default, 400, "INVALID_PARAMETER_VALUE")


def test_artifact_paths_are_checked_and_listed_one_level_deep(api: Api) -> None:
    admin = api.as_admin()
    run_id = _new_run(api)
    root = f"0/{run_id}/artifacts"
    for path, data in [("a.txt", b"1"), ("d/b.txt", b"22"), ("d/e/c.txt", b"333")]:
        put = api.client.put(f"{ARTIFACTS}/{root}/{path}", content=data, headers=admin)
        assert put.status_code == 200, put.text

    def listing(path: str) -> list[tuple[str, bool, int | None]]:
        response = api.client.get(ARTIFACTS, params={"path": path}, headers=admin)
        assert response.status_code == 200, response.text
        return [(f["path"], f["is_dir"], f.get("file_size")) for f in response.json()["files"]]

    assert listing(root) == [("a.txt", False, 1), ("d", True, None)]
    assert listing(f"{root}/d") == [("b.txt", False, 2), ("e", True, None)]
    assert listing(f"{root}/a.txt") == []
    assert api.client.get(f"{ARTIFACTS}/{root}/d/e/c.txt", headers=admin).content == b"333"

    _error(
        api.client.get(f"{ARTIFACTS}/1/{run_id}/artifacts/a.txt", headers=admin),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    _error(
        api.client.get(f"{ARTIFACTS}/{root}/nope", headers=admin), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    bad = api.client.put(f"{ARTIFACTS}/{root}/x/%2E%2E/y", content=b"1", headers=admin)
    _error(bad, 400, "INVALID_PARAMETER_VALUE")
    _error(
        api.client.get(ARTIFACTS, params={"path": "not-a-run"}, headers=admin),
        400,
        "INVALID_PARAMETER_VALUE",
    )

    deleted = api.client.delete(f"{ARTIFACTS}/{root}/d", headers=admin)
    assert deleted.status_code == 200
    assert listing(root) == [("a.txt", False, 1)]


def test_native_routes_keep_their_own_error_codes(api: Api) -> None:
    response = api.client.get(f"/api/v1/runs/{'0' * 32}", headers=api.as_admin())
    _error(response, 404, "NOT_FOUND")
