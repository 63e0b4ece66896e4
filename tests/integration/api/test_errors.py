"""Bad input gets a 4xx naming what is wrong, in one body shape; never a 500.

Invalid input is exactly 400 on every native route, whether FastAPI's schema or a domain
check refused it, and the OpenAPI document says so (never 422).
"""

from __future__ import annotations

import pytest

from modelyard.core.clock import FakeClock
from modelyard.testing.harness import Api


def _error(response: object) -> tuple[int, str, str]:
    status = response.status_code  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error_code", "message"}
    return status, body["error_code"], body["message"]


def test_malformed_json_is_400(api: Api) -> None:
    response = api.client.post(
        "/api/v1/projects",
        content=b'{"name": ',
        headers={**api.as_admin(), "content-type": "application/json"},
    )
    status, code, message = _error(response)
    assert (status, code) == (400, "INVALID_INPUT")
    assert "not valid JSON" in message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "field 'name' is required"),
        ({"name": "ok", "colour": "red"}, "unknown field 'colour'"),
        ({"name": 12}, "field 'name'"),
        ({"name": ["a"]}, "field 'name'"),
        ([1, 2], "body"),
    ],
)
def test_bad_fields_are_named(api: Api, body: object, fragment: str) -> None:
    response = api.client.post("/api/v1/projects", json=body, headers=api.as_admin())
    status, code, message = _error(response)
    assert (status, code) == (400, "INVALID_INPUT")
    assert fragment in message


@pytest.mark.parametrize("name", ["Upper", "-lead", "trail-", "a" * 64, "sp ace", "ü"])
def test_invalid_project_names_are_400(api: Api, name: str) -> None:
    response = api.client.post("/api/v1/projects", json={"name": name}, headers=api.as_admin())
    status, code, message = _error(response)
    assert status == 400
    assert code == "INVALID_INPUT"
    assert "name" in message


def test_duplicates_are_409_and_unknowns_404(api: Api) -> None:
    admin = api.as_admin()
    assert api.client.post("/api/v1/projects", json={"name": "x"}, headers=admin).status_code == 201
    assert _error(api.client.post("/api/v1/projects", json={"name": "x"}, headers=admin))[:2] == (
        409,
        "ALREADY_EXISTS",
    )
    assert _error(api.client.get("/api/v1/projects/nope", headers=admin))[:2] == (404, "NOT_FOUND")
    assert _error(api.client.delete("/api/v1/tokens/ffffffffffffffff", headers=admin))[0] == 404
    assert _error(api.client.get("/api/v1/nothing-here", headers=admin))[:2] == (404, "NOT_FOUND")
    assert _error(api.client.patch("/api/v1/projects", headers=admin))[:2] == (
        405,
        "METHOD_NOT_ALLOWED",
    )


def test_bad_member_role_and_user(api: Api) -> None:
    admin = api.as_admin()
    url = "/api/v1/projects/default/members"
    status, _, message = _error(
        api.client.post(url, json={"user": "a", "role": "god"}, headers=admin)
    )
    assert status == 400
    assert "role" in message
    status, _, message = _error(
        api.client.post(url, json={"user": "bad name!", "role": "viewer"}, headers=admin)
    )
    assert status == 400
    assert "user name" in message


@pytest.mark.parametrize(
    "header",
    ["Bearer nonsense", "Bearer myt_0123456789abcdef_" + "A" * 43, "Basic Zm9vOmJhcg==", "Bearer"],
)
def test_bad_tokens_are_401(api: Api, header: str) -> None:
    response = api.client.get("/api/v1/projects", headers={"Authorization": header})
    assert _error(response)[:2] == (401, "UNAUTHENTICATED")


def test_revoked_and_expired_tokens_are_401(api: Api, fake_clock: FakeClock) -> None:
    admin = api.as_admin()
    created = api.client.post(
        "/api/v1/tokens", json={"name": "short", "expires_in_s": 60}, headers=admin
    ).json()
    headers = api.auth(created["token"])
    assert api.client.get("/api/v1/projects", headers=headers).status_code == 200
    fake_clock.advance(61)
    status, _, message = _error(api.client.get("/api/v1/projects", headers=headers))
    assert status == 401
    assert "expired" in message

    other = api.client.post("/api/v1/tokens", json={"name": "gone"}, headers=admin).json()
    assert api.client.delete(f"/api/v1/tokens/{other['id']}", headers=admin).status_code == 200
    status, _, message = _error(
        api.client.get("/api/v1/projects", headers=api.auth(other["token"]))
    )
    assert status == 401
    assert "revoked" in message


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "expires_in_s": -5},
        {"name": "x", "role": "editor"},
        {"name": "x", "project": "ghost", "role": "viewer"},
        {"name": ""},
        {"name": "x", "user": "ghost"},
    ],
)
def test_bad_token_requests_are_4xx(api: Api, body: dict[str, object]) -> None:
    before = len(api.ctx.store.auth.list_tokens())
    response = api.client.post("/api/v1/tokens", json=body, headers=api.as_admin())
    assert 400 <= response.status_code < 500, response.text
    assert len(api.ctx.store.auth.list_tokens()) == before


def test_audit_query_bounds(api: Api) -> None:
    response = api.client.get("/api/v1/audit?limit=0", headers=api.as_admin())
    assert _error(response)[0] == 400
    response = api.client.get("/api/v1/audit?since=yesterday", headers=api.as_admin())
    assert "since" in _error(response)[2]


# --- invalid input is exactly 400, on representative native routes ---------------------

P = "/api/v1/projects/default"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/projects", b'{"name": '),
        ("/api/v1/tokens", b"{name: 1}"),
        (f"{P}/deployments/churn-api/alerts", b'{"rules": ["p99_ms > 50"]'),
    ],
)
def test_a_malformed_json_body_is_400(api: Api, path: str, body: bytes) -> None:
    headers = {**api.as_admin(), "content-type": "application/json"}
    status, code, message = _error(api.client.post(path, content=body, headers=headers))
    assert (status, code) == (400, "INVALID_INPUT")
    assert "not valid JSON" in message


@pytest.mark.parametrize(
    ("method", "path", "body", "fragment"),
    [
        # a missing required field
        ("POST", "/api/v1/projects", {}, "field 'name' is required"),
        ("PUT", f"{P}/budget", {"alert_at": [50]}, "field 'monthly' is required"),
        # a wrong-typed field
        ("POST", "/api/v1/projects", {"name": 12}, "field 'name'"),
        ("PUT", f"{P}/budget", {"monthly": "lots"}, "field 'monthly'"),
        ("POST", "/api/v1/tokens", {"name": "x", "expires_in_s": "soon"}, "expires_in_s"),
        # an unknown field
        ("POST", "/api/v1/projects", {"name": "ok", "colour": "red"}, "unknown field 'colour'"),
        ("PUT", f"{P}/quota", {"max_pods": 3}, "unknown field 'max_pods'"),
    ],
)
def test_a_body_that_fails_the_schema_is_400(
    api: Api, method: str, path: str, body: object, fragment: str
) -> None:
    response = api.client.request(method, path, json=body, headers=api.as_admin())
    status, code, message = _error(response)
    assert (status, code) == (400, "INVALID_INPUT")
    assert fragment in message


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/api/v1/audit?limit=0", "limit"),
        ("/api/v1/audit?limit=many", "limit"),
        ("/api/v1/audit?since=yesterday", "since"),
        (f"{P}/budget/history?after_id=-1", "after_id"),
        (f"{P}/deployments/churn-api/alerts/history?limit=x", "limit"),
    ],
)
def test_a_bad_query_parameter_is_400(api: Api, path: str, fragment: str) -> None:
    status, code, message = _error(api.client.get(path, headers=api.as_admin()))
    assert (status, code) == (400, "INVALID_INPUT")
    assert fragment in message


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        (f"{P}/models/churn/versions/latest", "version"),
        (f"{P}/deployments/churn-api/alerts/one", "rule_id"),
        (f"{P}/deployments/churn-api/silences/1.5", "silence_id"),
    ],
)
def test_a_bad_path_parameter_is_400(api: Api, path: str, fragment: str) -> None:
    status, code, message = _error(api.client.delete(path, headers=api.as_admin()))
    assert (status, code) == (400, "INVALID_INPUT")
    assert fragment in message


def test_a_domain_refusal_is_the_same_400(api: Api) -> None:
    response = api.client.post("/api/v1/projects", json={"name": "Upper"}, headers=api.as_admin())
    assert _error(response)[:2] == (400, "INVALID_INPUT")


def test_openapi_declares_400_and_never_422(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    operations = [
        (f"{method.upper()} {path}", operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) > 50
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    for name, operation in operations:
        responses = operation["responses"]
        assert "422" not in responses, name
        assert responses["400"]["content"]["application/json"]["schema"] == error_body, name
        assert responses["4XX"]["content"]["application/json"]["schema"] == error_body, name
    schemas = schema["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert set(schemas["ErrorBody"]["required"]) == {"error_code", "message"}
