"""The native tracking API: bad input gets a 4xx that names the field."""

from __future__ import annotations

import math

import pytest

from modelyard.testing.harness import Api


@pytest.fixture
def run_id(api: Api) -> str:
    response = api.client.post(
        "/api/v1/runs", json={"experiment_id": 0, "name": "r"}, headers=api.as_admin()
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _log(api: Api, run_id: str, body: dict[str, object]) -> tuple[int, str]:
    response = api.client.post(
        f"/api/v1/runs/{run_id}/log-batch", json=body, headers=api.as_admin()
    )
    return response.status_code, response.json().get("message", "")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"metrics": [{"key": "bad key!", "value": 1}]}, "invalid metric key 'bad key!'"),
        ({"metrics": [{"key": "a/../b", "value": 1}]}, "'..' is not allowed"),
        ({"metrics": [{"key": "k" * 251, "value": 1}]}, "longer than 250"),
        ({"metrics": [{"key": "m", "value": "abc"}]}, "not a number"),
        ({"metrics": [{"key": "m", "value": 1, "step": "x"}]}, "step"),
        ({"metrics": [["m", 1.0]]}, "metrics"),
        ({"params": {"p": "x" * 6001}}, "limit is 6000"),
        ({"tags": {"t": "x" * 8001}}, "limit is 8000"),
        ({"params": {"": "x"}}, "non-empty"),
        ({"metrics": [], "colour": 1}, "unknown field 'colour'"),
    ],
)
def test_bad_batches_are_4xx_naming_the_field(
    api: Api, run_id: str, body: dict[str, object], fragment: str
) -> None:
    status, message = _log(api, run_id, body)
    assert 400 <= status < 500
    assert fragment in message
    run = api.client.get(f"/api/v1/runs/{run_id}", headers=api.as_admin()).json()
    assert run["metrics"] == {}
    assert run["params"] == {}


def test_a_run_is_created_with_its_params_in_one_request(api: Api) -> None:
    body = {"experiment_id": 0, "name": "p", "params": {"lr": "0.1"}, "tags": {"t": "1"}}
    created = api.client.post("/api/v1/runs", json=body, headers=api.as_admin())
    assert created.status_code == 201, created.text
    assert created.json()["params"] == {"lr": "0.1"}
    assert created.json()["tags"]["t"] == "1"


def test_a_bad_param_at_create_writes_no_run(api: Api) -> None:
    def names() -> list[str]:
        found = api.client.post(
            "/api/v1/runs/search", json={"experiment_ids": [0]}, headers=api.as_admin()
        )
        return [r["name"] for r in found.json()["runs"]]

    before = names()
    body = {"experiment_id": 0, "name": "bad", "params": {"p": "x" * 6001}}
    created = api.client.post("/api/v1/runs", json=body, headers=api.as_admin())
    assert created.status_code == 400
    assert "limit is 6000" in created.json()["message"]
    assert names() == before


def test_a_batch_can_end_its_run_in_the_same_write(api: Api, run_id: str) -> None:
    body = {"metrics": [{"key": "m", "value": 1}], "end_status": "FINISHED"}
    assert _log(api, run_id, body)[0] == 200
    run = api.client.get(f"/api/v1/runs/{run_id}", headers=api.as_admin()).json()
    assert run["status"] == "FINISHED"
    assert run["end_time_ms"] is not None
    assert run["metrics"]["m"]["value"] == 1


def test_end_status_must_be_terminal_and_a_rejected_batch_ends_nothing(
    api: Api, run_id: str
) -> None:
    status, message = _log(api, run_id, {"tags": {"t": "1"}, "end_status": "RUNNING"})
    assert status == 400
    assert "end_status must be FINISHED, FAILED or KILLED" in message
    status, _ = _log(api, run_id, {"params": {"p": "x" * 6001}, "end_status": "FAILED"})
    assert status == 400
    run = api.client.get(f"/api/v1/runs/{run_id}", headers=api.as_admin()).json()
    assert (run["status"], run["tags"].get("t"), run["params"]) == ("RUNNING", None, {})


def test_param_reset_conflict_names_both_values(api: Api, run_id: str) -> None:
    assert _log(api, run_id, {"params": {"lr": "0.1"}})[0] == 200
    status, message = _log(api, run_id, {"params": {"lr": "0.2"}})
    assert status == 400
    assert "'0.1'" in message
    assert "'0.2'" in message


def test_nan_and_infinity_round_trip(api: Api, run_id: str) -> None:
    body = {
        "metrics": [
            {"key": "nan", "value": "NaN"},
            {"key": "inf", "value": "Infinity"},
            ["ninf", "-Infinity", 0, 5],
        ]
    }
    assert _log(api, run_id, body)[0] == 200
    metrics = api.client.get(f"/api/v1/runs/{run_id}", headers=api.as_admin()).json()["metrics"]
    assert metrics["nan"]["value"] == "NaN"
    assert metrics["inf"]["value"] == "Infinity"
    assert metrics["ninf"]["value"] == "-Infinity"
    assert float(metrics["ninf"]["value"]) == -math.inf


def test_unknown_ids_are_404(api: Api) -> None:
    admin = api.as_admin()
    missing = "f" * 32
    assert api.client.get(f"/api/v1/runs/{missing}", headers=admin).status_code == 404
    status = api.client.post(f"/api/v1/runs/{missing}/log-batch", json={}, headers=admin)
    assert status.status_code == 404
    bad_experiment = api.client.post("/api/v1/runs", json={"experiment_id": 999}, headers=admin)
    assert bad_experiment.status_code == 404
    not_int = api.client.post("/api/v1/runs", json={"experiment_id": "abc"}, headers=admin)
    assert not_int.status_code == 400
    assert "experiment_id" in not_int.json()["message"]


def test_search_errors_name_the_problem(api: Api) -> None:
    admin = api.as_admin()
    response = api.client.post(
        "/api/v1/runs/search",
        json={"experiment_ids": [0], "filter": "metrics.auc >> 1"},
        headers=admin,
    )
    assert response.status_code == 400
    response = api.client.post(
        "/api/v1/runs/search",
        json={"experiment_ids": [0], "page_token": "garbage"},
        headers=admin,
    )
    assert response.status_code == 400
    assert "page_token" in response.json()["message"]


def test_batch_ids_make_retries_idempotent(api: Api, run_id: str) -> None:
    body = {"batch_id": "b-1", "metrics": [{"key": "m", "value": 1, "step": s} for s in range(5)]}
    first = api.client.post(f"/api/v1/runs/{run_id}/log-batch", json=body, headers=api.as_admin())
    again = api.client.post(f"/api/v1/runs/{run_id}/log-batch", json=body, headers=api.as_admin())
    assert (first.json()["applied"], again.json()["applied"]) == (True, False)
    history = api.client.get(f"/api/v1/runs/{run_id}/metrics/m", headers=api.as_admin()).json()
    assert len(history["metrics"]) == 5
