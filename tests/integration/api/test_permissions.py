"""Every route declares a permission, and the declarations are enforced."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from modelyard.core.entities import Role
from modelyard.server._routing import MUTATING_METHODS, PERMISSION_KEY
from modelyard.testing.harness import Api

# Routes a viewer may call to manage their own credentials; escalation through them is
# tested separately below.
# Own things, or no session to act on: each checks the caller itself (tested elsewhere).
SELF_SERVICE = {"token.create", "token.revoke", "user.password", "ui.login", "ui.logout"}
# Reads that travel as POST because their query is a JSON body.
VIEWER_MAY = {
    "run.search",
    "mlflow.experiment.search",
    "mlflow.run.search",
    "mlflow.logged_model.search",
    "mlflow.experiment.search_datasets",
    "mlflow.registered_model.latest_versions",
}


def _routes(api: Api) -> list[BaseRoute]:
    return list(api.client.app.routes)  # type: ignore[attr-defined]


def _concrete(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace(f"{{{name}}}", value)
    path = re.sub(r"\{key(:path)?\}", "loss", path)
    # MLflow's artifact paths name the run: <experiment_id>/<run_id>/artifacts/<file>.
    file = f"{ids['experiment_id']}/{ids['run_id']}/artifacts/some/file.txt"
    return re.sub(r"\{path(:path)?\}", file, path)


def _existing_ids(api: Api) -> dict[str, str]:
    """Ids of real resources, so resource-scoped routes reach their permission check."""
    caller = api.ctx.auth.authenticate(api.admin_token)
    run = api.ctx.tracking.create_run(caller, 0, name="probe")
    logged_model = api.ctx.store.logged_models.create(
        experiment_id=0,
        name="probe",
        model_type="",
        source_run_id=run.id,
        user=caller.user,
        tags={},
        params={},
    )
    return {
        "project": "default",
        "token_id": "0" * 16,
        "experiment_id": "0",
        "run_id": run.id,
        "model_id": logged_model.id,
    }


def _body(ids: dict[str, str]) -> dict[str, object]:
    return {
        "run_id": ids["run_id"],
        "run_uuid": ids["run_id"],
        "experiment_id": ids["experiment_id"],
        "experiment_ids": [ids["experiment_id"]],
    }


def test_every_route_declares_a_permission(api: Api) -> None:
    undeclared = []
    for route in _routes(api):
        if not isinstance(route, APIRoute):
            undeclared.append(getattr(route, "path", repr(route)))
        elif not (route.openapi_extra or {}).get(PERMISSION_KEY):
            undeclared.append(route.path)
    assert undeclared == []


def test_openapi_publishes_each_permission(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert PERMISSION_KEY in op, f"{method.upper()} {path}"


def test_no_token_gets_401_on_every_non_public_route(api: Api) -> None:
    checked = 0
    ids = _existing_ids(api)
    for route in _routes(api):
        assert isinstance(route, APIRoute)
        if route.openapi_extra and route.openapi_extra[PERMISSION_KEY] == "public":
            continue
        for method in route.methods:
            url = _concrete(route.path, ids)
            response = api.client.request(method, url, json=_body(ids), params=_body(ids))
            assert response.status_code == 401, f"{method} {route.path}: {response.text}"
            assert response.json()["error_code"] == "UNAUTHENTICATED"
            assert response.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 10


def test_viewer_gets_403_on_every_mutating_route(api: Api) -> None:
    viewer = api.auth(api.token_for("vera", Role.VIEWER))
    checked = 0
    ids = _existing_ids(api)
    for route in _routes(api):
        assert isinstance(route, APIRoute)
        for method in route.methods & MUTATING_METHODS:
            if route.name in SELF_SERVICE or route.name in VIEWER_MAY:
                continue
            url = _concrete(route.path, ids)
            response = api.client.request(
                method, url, json=_body(ids), params=_body(ids), headers=viewer
            )
            assert response.status_code == 403, f"{method} {route.path}: {response.text}"
            assert response.json()["error_code"] == "PERMISSION_DENIED"
            checked += 1
    assert checked >= 4


def test_viewer_cannot_escalate_through_self_service_routes(api: Api) -> None:
    viewer = api.auth(api.token_for("vera", Role.VIEWER))
    for body in (
        {"name": "x", "project": "default", "role": "editor"},
        {"name": "x", "user": "admin"},
        {"name": "x", "user": "admin", "project": "default", "role": "viewer"},
    ):
        response = api.client.post("/api/v1/tokens", json=body, headers=viewer)
        assert response.status_code == 403, body
    admin_tokens = api.client.get("/api/v1/tokens", headers=api.as_admin()).json()
    response = api.client.delete(f"/api/v1/tokens/{admin_tokens[0]['id']}", headers=viewer)
    assert response.status_code == 404  # someone else's token is not even visible
    # ...but a viewer may mint a viewer token for their own use.
    own = api.client.post(
        "/api/v1/tokens",
        json={"name": "laptop", "project": "default", "role": "viewer"},
        headers=viewer,
    )
    assert own.status_code == 201


@pytest.mark.parametrize(
    ("role", "status"), [(Role.VIEWER, 403), (Role.EDITOR, 201), (Role.ADMIN, 201)]
)
def test_role_ladder_on_artifact_upload(api: Api, role: Role, status: int) -> None:
    headers = api.auth(api.token_for(f"u-{role.value}", role))
    response = api.client.put(
        "/api/v1/projects/default/artifacts/a.txt", content=b"x", headers=headers
    )
    assert response.status_code == status, response.text


def test_membership_in_one_project_grants_nothing_in_another(api: Api) -> None:
    api.client.post("/api/v1/projects", json={"name": "other"}, headers=api.as_admin())
    editor = api.auth(api.token_for("ed", Role.EDITOR))
    response = api.client.get("/api/v1/projects/other/artifacts", headers=editor)
    assert response.status_code == 403
    listed = api.client.get("/api/v1/projects", headers=editor).json()
    assert [p["name"] for p in listed] == ["default"]


def test_scoped_token_is_capped_by_scope_and_by_the_user_role(api: Api) -> None:
    admin = api.as_admin()
    api.client.post("/api/v1/projects", json={"name": "other"}, headers=admin)
    scoped = api.client.post(
        "/api/v1/tokens",
        json={"name": "ci", "project": "default", "role": "viewer"},
        headers=admin,
    ).json()["token"]
    headers = api.auth(scoped)
    # the platform admin's token scoped to viewer in default: reads default, nothing else
    assert api.client.get("/api/v1/projects/default", headers=headers).status_code == 200
    put = api.client.put("/api/v1/projects/default/artifacts/a", content=b"1", headers=headers)
    assert put.status_code == 403
    assert api.client.get("/api/v1/projects/other", headers=headers).status_code == 403
    assert (
        api.client.post("/api/v1/projects", json={"name": "x"}, headers=headers).status_code == 403
    )
