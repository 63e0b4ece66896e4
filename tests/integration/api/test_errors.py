"""Bad input gets a 4xx naming what is wrong, in one body shape; never a 500."""

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
    assert (status, code) == (422, "INVALID_INPUT")
    assert fragment in message


@pytest.mark.parametrize("name", ["Upper", "-lead", "trail-", "a" * 64, "sp ace", "ü"])
def test_invalid_project_names_are_400(api: Api, name: str) -> None:
    response = api.client.post("/api/v1/projects", json={"name": name}, headers=api.as_admin())
    status, code, message = _error(response)
    assert status in (400, 422)
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
    assert status == 422
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
    assert _error(response)[0] == 422
    response = api.client.get("/api/v1/audit?since=yesterday", headers=api.as_admin())
    assert "since" in _error(response)[2]
