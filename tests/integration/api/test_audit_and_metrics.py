"""Mutating calls leave audit records; /metrics counts requests by route and status."""

from __future__ import annotations

from modelyard.core.entities import Role
from modelyard.testing.harness import Api


def test_mutations_are_audited_with_outcome(api: Api) -> None:
    admin = api.as_admin()
    api.client.post("/api/v1/projects", json={"name": "fraud-team"}, headers=admin)
    api.client.post(
        "/api/v1/projects/fraud-team/members",
        json={"user": "alice", "role": "viewer"},
        headers=admin,
    )
    api.client.post("/api/v1/projects", json={"name": "fraud-team"}, headers=admin)  # 409
    viewer = api.auth(api.token_for("vera", Role.VIEWER))
    api.client.post("/api/v1/projects", json={"name": "sneaky"}, headers=viewer)  # 403
    api.client.get("/api/v1/projects", headers=admin)  # reads are not audited

    records = api.client.get("/api/v1/audit", headers=admin).json()
    summary = [
        (r["actor"], r["action"], r["project"], r["outcome"], r["status_code"]) for r in records
    ]
    assert summary == [
        ("vera", "project.create", None, "denied", 403),
        ("admin", "project.create", "fraud-team", "error", 409),
        ("admin", "project.member.add", "fraud-team", "ok", 201),
        ("admin", "project.create", "fraud-team", "ok", 201),
    ]
    assert records[2]["target"] == "user:alice role:viewer"
    assert all(r["timestamp"] > 0 for r in records)


def test_unauthenticated_mutation_is_audited_as_anonymous(api: Api) -> None:
    api.client.post("/api/v1/projects", json={"name": "x"})
    record = api.client.get("/api/v1/audit", headers=api.as_admin()).json()[0]
    assert (record["actor"], record["outcome"], record["status_code"]) == (
        "anonymous",
        "denied",
        401,
    )


def test_audit_by_project_is_for_that_project_admin(api: Api) -> None:
    api.client.post("/api/v1/projects", json={"name": "p1"}, headers=api.as_admin())
    boss = api.auth(api.token_for("boss", Role.ADMIN, project="p1"))
    api.client.post(
        "/api/v1/projects/p1/members", json={"user": "z", "role": "viewer"}, headers=boss
    )
    mine = api.client.get("/api/v1/audit?project=p1", headers=boss)
    assert mine.status_code == 200
    assert {r["project"] for r in mine.json()} == {"p1"}
    assert api.client.get("/api/v1/audit", headers=boss).status_code == 403


def test_metrics_count_requests_by_route_and_status(api: Api) -> None:
    api.client.get("/api/v1/projects/default", headers=api.as_admin())
    api.client.get("/api/v1/projects/missing", headers=api.as_admin())
    text = api.client.get("/metrics").text
    route = 'route="/api/v1/projects/{project}"'
    assert f'modelyard_http_requests_total{{method="GET",{route},status="200"}} 1.0' in text
    assert 'route="/api/v1/projects/{project}",status="404"' in text
    assert "modelyard_http_request_duration_seconds_bucket" in text


def test_health_and_ready(api: Api) -> None:
    assert api.client.get("/health").json()["status"] == "ok"
    ready = api.client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"metadata_store": "ok"}


def test_whoami(api: Api) -> None:
    me = api.client.get("/api/v1/users/me", headers=api.as_admin()).json()
    assert me["user"] == "admin"
    assert me["is_admin"] is True
    assert me["memberships"][0]["role"] == "admin"
