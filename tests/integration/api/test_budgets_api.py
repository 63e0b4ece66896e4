"""The budgets and quotas API over a real store and the real cost ledger, with a fake
clock: set, show (spend from replica rows the ledger prices), history, list, remove,
every refusal, the roles, and quotas enforced by the deployments API.

No process is started: replica rows stand for what the controller would have recorded,
and the budget loop's passes are driven by hand.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.core.clock import FakeClock
from modelyard.core.deployments import Replica
from modelyard.core.entities import ArtifactEntry, Role
from modelyard.cost.budget import month_of
from modelyard.cost.budget_loop import BudgetLoop
from modelyard.testing.harness import Api

P = "/api/v1/projects/default"
DEPLOY = f"{P}/deployments"
DAY_MS = 86_400_000


def put_budget(api: Api, headers: dict[str, str] | None = None, **body: Any) -> Any:
    return api.client.put(f"{P}/budget", json=body, headers=headers or api.as_admin())


def register(api: Api, versions: int = 2) -> None:
    for i in range(versions):
        digest = f"{i + 1:x}" * 64
        api.ctx.store.registry.create_version(
            "default", "churn", source_run_id=None, source_uri="upload", flavor="sklearn",
            signature_json="", package_digest=digest, user="admin",
            files=[ArtifactEntry("modelyard.yaml", digest, 10)],
        )  # fmt: skip


def deploy(api: Api, name: str, **scaling: Any) -> Any:
    body = {"name": name, "model": "models:/churn/1", "scaling": scaling}
    return api.client.post(DEPLOY, json=body, headers=api.as_admin())


def running(api: Api, deployment: str, n: int, *, cpu: float = 1.0, memory_mb: int = 512,
            started_ms: int | None = None) -> None:  # fmt: skip
    """``n`` ready replicas of revision 1, as the controller records them."""
    dep = api.ctx.store.deployments.get(deployment, "default")
    now_ms = int(api.ctx.clock.now() * 1000)
    for i in range(n):
        api.ctx.store.deployments.add_replica(Replica(
            id=f"{deployment}-r{i}-{now_ms}", deployment_id=dep.id, revision=1, pid=0, port=0,
            state="ready", mode="fork", standby=False, cpu=cpu, memory_mb=memory_mb,
            started_at_ms=started_ms if started_ms is not None else now_ms, ready_at_ms=now_ms,
            stopped_at_ms=None, exit_reason="",
        ))  # fmt: skip


# ---- budgets ------------------------------------------------------------------------


def test_set_show_evaluate_list_and_history(api: Api, fake_clock: FakeClock) -> None:
    register(api, 1)
    assert deploy(api, "churn-api", min_replicas=1, max_replicas=1).status_code == 201
    month = month_of(fake_clock.now())
    start_ms = int(month.start_s * 1000) + DAY_MS  # running since the 2nd of the month
    running(api, "churn-api", 1, cpu=16.0, memory_mb=64 * 1024, started_ms=start_ms)
    r = put_budget(api, monthly=300, alert_at=[50, 80, 100], webhook="http://127.0.0.1:9/hook")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["webhook_secret"].startswith("whsec_")
    assert (body["monthly"], body["currency"], body["alert_at"]) == (300.0, "USD", [50, 80, 100])
    # The ledger prices the replica from its start until now.
    catalog = api.ctx.cost.catalog
    elapsed_s = fake_clock.now() - start_ms / 1000
    expected = catalog.replica_second(16.0, 64.0) * elapsed_s
    shown = api.client.get(f"{P}/budget", headers=api.as_admin()).json()
    assert shown["spent"] == pytest.approx(expected, rel=1e-6)
    assert shown["percent"] == pytest.approx(100 * expected / 300, rel=1e-6)
    month_elapsed_s = fake_clock.now() - month.start_s
    assert shown["forecast"] == pytest.approx(expected * month.length_s / month_elapsed_s)
    assert shown["month"] == month.key
    assert [t["percent"] for t in shown["thresholds"]] == [50, 80, 100]
    assert all(t["actual_at_ms"] is None for t in shown["thresholds"])  # not evaluated yet
    assert shown["next_evaluation_ms"] is None
    assert "secret" not in str(shown)
    # One pass of the server's loop: what the spend passed is recorded as crossed.
    loop = BudgetLoop(api.ctx.store, api.ctx.cost.project_spend, clock=fake_clock)
    try:
        loop.evaluate(api.ctx.store.budgets.budget("default"), fake_clock.now())
    finally:
        loop.stop()
    shown = api.client.get(f"{P}/budget", headers=api.as_admin()).json()
    reached = [t["percent"] for t in shown["thresholds"] if t["actual_at_ms"] is not None]
    assert reached == [t for t in (50, 80, 100) if expected >= 3 * t]
    assert reached  # the 13 days this replica ran cost more than 150 USD
    assert shown["next_evaluation_ms"] == int(fake_clock.now() * 1000) + 60_000
    listed = api.client.get("/api/v1/budgets", headers=api.as_admin()).json()
    assert [b["project"] for b in listed] == ["default"]
    assert listed[0]["last"]["spent"] == pytest.approx(expected, rel=1e-6)
    history = api.client.get(f"{P}/budget/history", headers=api.as_admin()).json()
    forecast_reached = [t["percent"] for t in shown["thresholds"] if t["forecast_at_ms"]]
    assert forecast_reached == [100]  # on track for about twice the budget
    assert [e["kind"] for e in history] == ["set"] + ["crossed"] * (len(reached) + 1)
    crossed = api.client.get(
        f"{P}/budget/history", params={"kind": "crossed"}, headers=api.as_admin()
    ).json()
    assert "[BUDGET] default" in crossed[0]["message"]
    audit = api.client.get("/api/v1/audit", headers=api.as_admin()).json()
    assert any(a["action"] == "budget.set" and a["outcome"] == "ok" for a in audit)


def test_setting_again_replaces_and_issues_a_new_secret(api: Api) -> None:
    first = put_budget(api, monthly=100, webhook="https://hooks.example/a").json()
    second = put_budget(api, monthly=150, alert_at=[90]).json()
    assert second["webhook_secret"] is None
    assert (second["monthly"], second["alert_at"], second["webhook"]) == (150.0, [90.0], "")
    third = put_budget(api, monthly=150, webhook="https://hooks.example/a").json()
    assert third["webhook_secret"] != first["webhook_secret"]
    assert put_budget(api, monthly=10, currency="usd").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"monthly": 0}, 400, "monthly"),
        ({"monthly": -5}, 400, "monthly"),
        ({"monthly": 100, "currency": "EUR"}, 400, "price catalog is in USD"),
        ({"monthly": 100, "currency": "XYZ"}, 400, "currency"),
        ({"monthly": 100, "alert_at": []}, 400, "alert_at"),
        ({"monthly": 100, "alert_at": [0, 50]}, 400, "alert_at"),
        ({"monthly": 100, "alert_at": [50, 1001]}, 400, "(0, 1000]"),
        ({"monthly": 100, "alert_at": [80, 50]}, 400, "increase"),
        ({"monthly": 100, "alert_at": [50, 50]}, 400, "increase"),
        ({"monthly": 100, "webhook": "ftp://example.com/x"}, 400, "webhook"),
        ({"monthly": 100, "webhook": "not a url"}, 400, "webhook"),
        ({"monthly": 100, "webhook": "http://"}, 400, "webhook"),
        ({"monthly": 100, "action": "nope"}, 404, "nope"),
        ({"monthly": "lots"}, 400, "monthly"),
        ({"monthly": 100, "alert_at": ["half"]}, 400, "alert_at"),
        ({"alert_at": [50]}, 400, "monthly"),
        ({"monthly": 100, "colour": "red"}, 400, "colour"),
    ],
)
def test_bad_budgets_are_refused_naming_the_field_and_write_nothing(
    api: Api, body: dict[str, Any], status: int, fragment: str
) -> None:
    r = put_budget(api, **body)
    assert r.status_code == status, r.text
    assert fragment in r.json()["message"]
    assert api.client.get(f"{P}/budget", headers=api.as_admin()).status_code == 404
    assert api.client.get(f"{P}/budget/history", headers=api.as_admin()).json() == []


def test_a_body_that_is_not_json_is_a_400(api: Api) -> None:
    r = api.client.put(
        f"{P}/budget",
        content=b"{monthly: 1",
        headers={**api.as_admin(), "content-type": "application/json"},
    )
    assert r.status_code == 400


def test_remove_keeps_the_history(api: Api) -> None:
    assert api.client.delete(f"{P}/budget", headers=api.as_admin()).status_code == 404
    put_budget(api, monthly=100)
    assert api.client.delete(f"{P}/budget", headers=api.as_admin()).status_code == 200
    r = api.client.get(f"{P}/budget", headers=api.as_admin())
    assert r.status_code == 404
    assert "budget set" in r.json()["message"]
    kinds = [
        e["kind"] for e in api.client.get(f"{P}/budget/history", headers=api.as_admin()).json()
    ]
    assert kinds == ["set", "removed"]


def test_unknown_project_and_bad_history_queries(api: Api) -> None:
    r = api.client.put("/api/v1/projects/nope/budget", json={"monthly": 1}, headers=api.as_admin())
    assert r.status_code == 404
    for params in ({"limit": 0}, {"after_id": -1}, {"limit": "x"}):
        r = api.client.get(f"{P}/budget/history", params=params, headers=api.as_admin())
        assert r.status_code == 400, params


def test_roles_admins_set_viewers_read(api: Api) -> None:
    viewer = api.auth(api.token_for("vera", Role.VIEWER))
    editor = api.auth(api.token_for("ed", Role.EDITOR))
    admin = api.auth(api.token_for("pam", Role.ADMIN))
    assert put_budget(api, viewer, monthly=100).status_code == 403
    assert put_budget(api, editor, monthly=100).status_code == 403
    assert put_budget(api, admin, monthly=100).status_code == 200
    assert api.client.get(f"{P}/budget", headers=viewer).status_code == 200
    assert api.client.get(f"{P}/budget/history", headers=viewer).status_code == 200
    assert api.client.delete(f"{P}/budget", headers=editor).status_code == 403
    assert [b["project"] for b in api.client.get("/api/v1/budgets", headers=viewer).json()] == [
        "default"
    ]
    api.ctx.store.auth.create_project("other-team")
    outsider = api.auth(api.token_for("olga", Role.ADMIN, project="other-team"))
    assert api.client.get(f"{P}/budget", headers=outsider).status_code == 403
    assert api.client.get("/api/v1/budgets", headers=outsider).json() == []
    assert api.client.put(f"{P}/quota", json={"max_replicas": 1}, headers=editor).status_code == 403
    assert api.client.get("/api/v1/budgets").status_code == 401
    denied = [a for a in api.client.get("/api/v1/audit", headers=api.as_admin()).json()
              if a["action"] == "budget.set" and a["outcome"] == "denied"]  # fmt: skip
    assert len(denied) == 2


# ---- quotas -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({}, 400, "at least one limit"),
        ({"max_replicas": -1}, 400, "max_replicas"),
        ({"max_cpu": -0.5}, 400, "max_cpu"),
        ({"max_memory_gb": 2e6}, 400, "max_memory_gb"),
        ({"max_gpu": -1}, 400, "max_gpu"),
        ({"max_replicas": 1.5}, 400, "max_replicas"),
        ({"max_cpu": "lots"}, 400, "max_cpu"),
        ({"max_pods": 3}, 400, "max_pods"),
    ],
)
def test_bad_quotas_are_refused_naming_the_field(
    api: Api, body: dict[str, Any], status: int, fragment: str
) -> None:
    r = api.client.put(f"{P}/quota", json=body, headers=api.as_admin())
    assert r.status_code == status, r.text
    assert fragment in r.json()["message"]
    assert api.client.get(f"{P}/quota", headers=api.as_admin()).status_code == 404


def test_quota_set_show_remove_with_usage(api: Api) -> None:
    register(api, 1)
    deploy(api, "churn-api", min_replicas=1, max_replicas=2)
    running(api, "churn-api", 2, cpu=0.5, memory_mb=1024)
    r = api.client.put(
        f"{P}/quota", json={"max_replicas": 8, "max_cpu": 16}, headers=api.as_admin()
    )
    assert r.status_code == 200, r.text
    q = r.json()
    assert (q["max_replicas"], q["max_cpu"], q["max_memory_gb"]) == (8, 16.0, None)
    assert q["usage"] == {"replicas": 2, "cpu": 1.0, "memory_gb": 2.0, "gpu": 0.0}
    viewer = api.auth(api.token_for("vera", Role.VIEWER))
    assert api.client.get(f"{P}/quota", headers=viewer).json()["max_cpu"] == 16.0
    assert api.client.delete(f"{P}/quota", headers=viewer).status_code == 403
    assert api.client.delete(f"{P}/quota", headers=api.as_admin()).status_code == 200
    assert api.client.get(f"{P}/quota", headers=api.as_admin()).status_code == 404
    assert api.client.delete(f"{P}/quota", headers=api.as_admin()).status_code == 404


def test_quotas_are_enforced_when_deploying(api: Api) -> None:
    register(api, 2)
    api.client.put(f"{P}/quota", json={"max_replicas": 3, "max_cpu": 4}, headers=api.as_admin())
    assert deploy(api, "a", min_replicas=1, max_replicas=3).status_code == 201
    running(api, "a", 2)
    # The minimum must fit beside what runs: 2 of 3 replicas are taken.
    r = deploy(api, "b", min_replicas=2, max_replicas=2)
    assert r.status_code == 403, r.text
    assert r.json()["error_code"] == "QUOTA_EXCEEDED"
    message = r.json()["message"]
    assert "max_replicas 3 replicas (2 in use" in message
    assert "'b' needs 2 replica(s) now and only 1 fit" in message
    # A maximum the quota can never hold, nothing else running or not.
    r = deploy(api, "b", min_replicas=0, max_replicas=2)
    assert r.status_code == 201, r.text  # one to prove the model, and 2 x 1 vCPU fit 4
    r = api.client.post(DEPLOY, json={"name": "c", "model": "models:/churn/1",
                                      "scaling": {"max_replicas": 2},
                                      "runtime": {"cpu": 3}}, headers=api.as_admin())  # fmt: skip
    assert r.status_code == 403
    assert "max_cpu 4 vCPU" in r.json()["message"]
    assert "at most 1 even with nothing else running" in r.json()["message"]
    names = [d["name"] for d in api.client.get(DEPLOY, headers=api.as_admin()).json()]
    assert names == ["a", "b"]
    denied = [a for a in api.client.get("/api/v1/audit", headers=api.as_admin()).json()
              if a["action"] == "deployment.create" and a["outcome"] == "denied"]  # fmt: skip
    assert len(denied) == 2
    # Updates: a minimum beside the others' replicas (b runs none: 3 fit)…
    r = api.client.patch(f"{DEPLOY}/a", json={"scaling": {"min_replicas": 3}},
                         headers=api.as_admin())  # fmt: skip
    assert r.status_code == 200, r.text
    # …a maximum beyond the quota, and a rollout with no room for its first replica.
    r = api.client.patch(f"{DEPLOY}/a", json={"scaling": {"max_replicas": 4}},
                         headers=api.as_admin())  # fmt: skip
    assert r.status_code == 403
    running(api, "b", 1)
    r = api.client.patch(f"{DEPLOY}/a", json={"model": "models:/churn/2"}, headers=api.as_admin())
    assert r.status_code == 403
    assert "needs 1 replica(s) now and only 0 fit" in r.json()["message"]
    events = api.client.get(f"{DEPLOY}/a/events", params={"kind": "quota"},
                            headers=api.as_admin()).json()  # fmt: skip
    assert [e["message"].split(":")[0] for e in events] == ["update refused", "update refused"]
    a = api.client.get(f"{DEPLOY}/a", headers=api.as_admin()).json()
    assert (a["scaling"]["max_replicas"], len(a["revisions"])) == (3, 1)


def test_lowering_a_quota_stops_nothing(api: Api) -> None:
    register(api, 1)
    deploy(api, "a", min_replicas=2, max_replicas=2)
    running(api, "a", 2)
    r = api.client.put(f"{P}/quota", json={"max_replicas": 1}, headers=api.as_admin())
    assert r.status_code == 200
    assert r.json()["usage"]["replicas"] == 2  # over the quota, and left running
    replicas = api.client.get(f"{DEPLOY}/a", headers=api.as_admin()).json()["replicas"]
    assert [x["state"] for x in replicas] == ["ready", "ready"]
    # An update that asks for no more room still works; one that asks for more does not.
    r = api.client.patch(f"{DEPLOY}/a", json={"scaling": {"target_concurrency": 8}},
                         headers=api.as_admin())  # fmt: skip
    assert r.status_code == 200, r.text
    r = api.client.patch(f"{DEPLOY}/a", json={"scaling": {"min_replicas": 0}},
                         headers=api.as_admin())  # fmt: skip
    assert r.status_code == 200, r.text
    r = api.client.patch(f"{DEPLOY}/a", json={"scaling": {"min_replicas": 2}},
                         headers=api.as_admin())  # fmt: skip
    assert r.status_code == 403
    assert "needs 2 replica(s) now and only 1 fit" in r.json()["message"]
