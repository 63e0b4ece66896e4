"""Every route of MLflow 3.17.2's services (the reference list) is answered, none by a 404
*route not found*; the not-implemented ones answer MLflow's NOT_IMPLEMENTED behind the
usual authentication; and docs/mlflow.md's table is what the generator produces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.core.entities import Role
from modelyard.server._mlflow_surface import (
    Status,
    SurfaceRoute,
    classify,
    current_table,
    load_reference,
    render_table,
)
from modelyard.server.routes.mlflow_unimplemented import NOT_IMPLEMENTED
from modelyard.testing.harness import Api

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
# A copy of ../shared/reference/mlflow_endpoints_3.17.2.json, so the walk runs anywhere.
REFERENCE = HERE / "mlflow_endpoints_3.17.2.json"
SHARED_REFERENCE = REPO.parent / "shared" / "reference" / REFERENCE.name
DOC = REPO / "docs" / "mlflow.md"
DOUBLED = "/api/2.0/mlflow-artifacts/mlflow-artifacts/"


def _surface(api: Api) -> list[SurfaceRoute]:
    return classify(api.client.app, load_reference(REFERENCE))  # type: ignore[arg-type]


def _call(api: Api, route: SurfaceRoute, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    body = {"run_id": "0" * 32, "experiment_id": "0", "experiment_ids": ["0"], "name": "probe"}
    response = api.client.request(
        route.method, route.example_path(), json=body, params={"probe": "1"}, headers=headers
    )
    try:
        content = response.json()
    except ValueError:
        content = {}
    return response.status_code, content if isinstance(content, dict) else {}


def test_the_vendored_reference_is_the_shared_one() -> None:
    if not SHARED_REFERENCE.exists():
        pytest.skip(f"{SHARED_REFERENCE} is not in this checkout's neighbourhood")
    assert json.loads(REFERENCE.read_text()) == json.loads(SHARED_REFERENCE.read_text())


def test_every_listed_route_is_served(api: Api) -> None:
    surface = _surface(api)
    assert len(surface) == 177
    assert [r.name for r in surface if r.status is Status.MISSING] == []


def test_every_listed_route_answers_something_else_than_route_not_found(api: Api) -> None:
    admin = api.as_admin()
    problems = []
    for route in _surface(api):
        status, content = _call(api, route, admin)
        code = content.get("error_code")
        where = f"{route.method} {route.example_path()} ({route.name}): {status} {content}"
        if code == "ENDPOINT_NOT_FOUND" or status == 405:
            problems.append(f"not routed: {where}")
        elif route.status is Status.NOT_IMPLEMENTED:
            if (status, code) != (501, "NOT_IMPLEMENTED"):
                problems.append(f"expected 501 NOT_IMPLEMENTED: {where}")
        elif status >= 500:
            problems.append(f"server error on a dummy request: {where}")
        elif status == 404 and code != "RESOURCE_DOES_NOT_EXIST":
            problems.append(f"404 that is not RESOURCE_DOES_NOT_EXIST: {where}")
    assert problems == []


def test_artifact_routes_also_answer_at_the_doubled_prefix_the_reference_spells(
    api: Api,
) -> None:
    admin = api.as_admin()
    doubled = [r for r in _surface(api) if r.listed_path.startswith(DOUBLED)]
    assert len(doubled) == 8
    for route in doubled:
        single = api.client.request(route.method, route.example_path(), headers=admin)
        literal = route.example_path().replace("/api/2.0/mlflow-artifacts/", DOUBLED, 1)
        answered = api.client.request(route.method, literal, headers=admin)
        assert answered.status_code == single.status_code
        assert answered.json().get("error_code") == single.json().get("error_code")
        assert answered.status_code != 404 or b"RESOURCE_DOES_NOT_EXIST" in answered.content


def test_not_implemented_routes_authenticate_check_roles_and_are_audited(api: Api) -> None:
    viewer = api.auth(api.token_for("vera", Role.VIEWER))
    url = "/api/2.0/mlflow/traces/search"
    anonymous = api.client.post(url, json={})
    assert anonymous.status_code == 401
    assert anonymous.json()["error_code"] == "UNAUTHENTICATED"
    denied = api.client.post(url, json={}, headers=viewer)
    assert denied.status_code == 403
    assert denied.json()["error_code"] == "PERMISSION_DENIED"
    read = api.client.get("/api/2.0/mlflow/scorers/list", headers=viewer)
    assert read.status_code == 501
    assert read.json()["error_code"] == "NOT_IMPLEMENTED"
    assert "ListScorers" in read.json()["message"]
    done = api.client.post(url, json={}, headers=api.as_admin())
    assert done.status_code == 501
    records = api.ctx.store.auth.list_audit(action="mlflow.not_implemented.SearchTracesV3")
    assert {(r.outcome, r.status_code) for r in records} >= {("denied", 403), ("error", 501)}


def test_routes_mlflow_serves_under_api_3_answer_there_too(api: Api) -> None:
    admin = api.as_admin()
    for method, path, name, also_v3 in NOT_IMPLEMENTED:
        if not also_v3:
            continue
        url = "/api/3.0" + path.replace("{artifact_path:path}", "x").replace("{", "").replace(
            "}", ""
        )
        response = api.client.request(method, url, json={}, headers=admin)
        assert response.status_code == 501, f"{method} {url} ({name}): {response.text}"
        assert response.json()["error_code"] == "NOT_IMPLEMENTED"


def test_literal_trace_routes_are_not_taken_for_an_id(api: Api) -> None:
    response = api.client.get("/api/3.0/mlflow/traces/get", headers=api.as_admin())
    assert response.status_code == 501
    assert "GetTrace " in response.json()["message"] or "(GetTrace)" in response.json()["message"]


def test_the_docs_table_is_generated_from_the_reference(api: Api) -> None:
    expected = render_table(_surface(api))
    assert current_table(DOC.read_text(encoding="utf-8")) == expected, (
        "docs/mlflow.md is stale: run python -m modelyard.server._mlflow_surface "
        f"{REFERENCE.relative_to(REPO)} docs/mlflow.md"
    )
