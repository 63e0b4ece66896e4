"""The deployments API: desired state, validation, traffic, shadow, rollback, events.

No process is started here (the controller is not running): these tests check what is
recorded and refused. The controller and the gateway are exercised end to end in
tests/e2e/test_deployments_e2e.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from modelyard.core.entities import ArtifactEntry, Role
from modelyard.testing.harness import Api

BASE = "/api/v1/projects/default/deployments"


def register(api: Api, name: str = "churn", n: int = 3) -> None:
    for i in range(n):
        digest = f"{i + 1:x}" * 64
        api.ctx.store.registry.create_version(
            "default", name, source_run_id=None, source_uri="upload", flavor="sklearn",
            signature_json="", package_digest=digest[:64],
            files=[ArtifactEntry("modelyard.yaml", digest[:64], 10)], user="admin",
        )  # fmt: skip
    api.ctx.store.registry.set_alias("default", name, "production", 1, "admin")


def create(api: Api, name: str = "churn-api", model: str = "models:/churn@production",
           **scaling: Any) -> Any:  # fmt: skip
    body = {"name": name, "model": model, "scaling": scaling}
    return api.client.post(BASE, json=body, headers=api.as_admin())


def error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json().get("message", "")


def test_create_show_and_list(api: Api) -> None:
    register(api)
    r = create(api, min_replicas=0, max_replicas=4, target_concurrency=4, idle_grace_s=30)
    assert r.status_code == 201, r.text
    dep = r.json()
    assert dep["endpoint"] == "http://127.0.0.1:5006/churn-api/"
    assert dep["traffic"] == {"1": 100}
    assert dep["stable_revision"] == 1
    rev = dep["revisions"][0]
    assert (rev["model_name"], rev["model_version"], rev["state"]) == ("churn", 1, "pending")
    assert dep["scaling"]["idle_grace_s"] == 30
    assert dep["replicas"] == []
    listed = api.client.get(BASE, headers=api.as_admin()).json()
    assert [d["name"] for d in listed] == ["churn-api"]
    events = api.client.get(f"{BASE}/churn-api/events", headers=api.as_admin()).json()
    assert events[0]["kind"] == "deployment"
    assert "created" in events[0]["message"]
    lineage = api.client.get(
        "/api/v1/projects/default/lineage/deployment/churn-api",
        params={"direction": "up"},
        headers=api.as_admin(),
    )
    assert lineage.status_code == 200, lineage.text
    assert [e["type"] for e in lineage.json()["edges"]] == ["serves"]


@pytest.mark.parametrize(
    ("kwargs", "status", "fragment"),
    [
        ({"model": "models:/nope@production"}, 404, "nope"),
        ({"model": "models:/churn/99"}, 404, "99"),
        ({"model": "churn"}, 400, "models:/"),
        ({"name": "Bad_Name"}, 400, "deployment name"),
        ({"min_replicas": 3, "max_replicas": 2}, 400, "min_replicas"),
        ({"max_replicas": 50}, 400, "MODELYARD_MAX_REPLICAS"),
        ({"target_concurrency": 0}, 400, "target_concurrency"),
        ({"policy": "magic"}, 400, "unknown policy"),
    ],
)
def test_bad_creates_are_refused_and_write_nothing(
    api: Api, kwargs: dict[str, Any], status: int, fragment: str
) -> None:
    register(api)
    name = kwargs.pop("name", "churn-api")
    model = kwargs.pop("model", "models:/churn@production")
    code, message = error(create(api, name, model, **kwargs))
    assert code == status
    assert fragment in message
    assert api.client.get(BASE, headers=api.as_admin()).json() == []


def test_duplicate_and_unknown_names(api: Api) -> None:
    register(api)
    assert create(api).status_code == 201
    assert create(api).status_code == 409
    assert api.client.get(f"{BASE}/ghost", headers=api.as_admin()).status_code == 404
    for method, path in [("GET", "/ghost/events"), ("POST", "/ghost/rollback"),
                         ("DELETE", "/ghost")]:  # fmt: skip
        assert api.client.request(method, BASE + path, headers=api.as_admin()).status_code == 404


def test_traffic_split_by_model_version(api: Api) -> None:
    register(api)
    create(api)
    r = api.client.put(f"{BASE}/churn-api/traffic", json={"weights": {"1": 90, "2": 10}},
                       headers=api.as_admin())  # fmt: skip
    assert r.status_code == 200, r.text
    dep = r.json()
    assert dep["traffic"] == {"1": 90, "2": 10}
    assert [(x["number"], x["model_version"]) for x in dep["revisions"]] == [(1, 1), (2, 2)]
    for weights, fragment in [({"1": 50, "2": 40}, "sum to 100"), ({"1": 101}, "0..100"),
                              ({"1": 50, "99": 50}, "99")]:  # fmt: skip
        r = api.client.put(f"{BASE}/churn-api/traffic", json={"weights": weights},
                           headers=api.as_admin())  # fmt: skip
        assert r.status_code in (400, 404)
        assert fragment in r.json()["message"]
    after = api.client.get(f"{BASE}/churn-api", headers=api.as_admin()).json()
    assert after["traffic"] == {"1": 90, "2": 10}
    assert len(after["revisions"]) == 2


def test_shadow_and_rollback(api: Api) -> None:
    register(api)
    create(api)
    r = api.client.put(f"{BASE}/churn-api/shadow", json={"version": 3, "percent": 20},
                       headers=api.as_admin())  # fmt: skip
    assert r.status_code == 200
    assert r.json()["shadow"] == {"2": 20.0}
    r = api.client.put(f"{BASE}/churn-api/shadow", json={"version": 1, "percent": 20},
                       headers=api.as_admin())  # fmt: skip
    assert error(r) == (400, "version 1 takes live traffic; it cannot also be a shadow")
    r = api.client.post(f"{BASE}/churn-api/rollback", headers=api.as_admin())
    assert r.status_code == 409
    assert "no previous stable" in r.json()["message"]
    api.client.put(f"{BASE}/churn-api/traffic", json={"weights": {"2": 100}},
                   headers=api.as_admin())  # fmt: skip
    dep = api.client.post(f"{BASE}/churn-api/rollback", headers=api.as_admin()).json()
    assert dep["traffic"] == {"1": 100}
    assert dep["stable_revision"] == 1


def test_update_starts_one_rollout_at_a_time(api: Api) -> None:
    register(api)
    create(api)
    body = {"model": "models:/churn/2", "strategy": "canary", "steps": [10, 50, 100],
            "step_interval_s": 60, "max_error_rate": 0.01, "max_p99_ratio": 1.5}  # fmt: skip
    r = api.client.patch(f"{BASE}/churn-api", json=body, headers=api.as_admin())
    assert r.status_code == 200, r.text
    ro = r.json()["rollout"]
    assert (ro["strategy"], ro["target"], ro["stable"], ro["phase"]) == ("canary", 2, 1, "starting")
    assert r.json()["traffic"] == {"1": 100}
    again = api.client.patch(f"{BASE}/churn-api", json=body, headers=api.as_admin())
    assert again.status_code == 409
    bad = {**body, "steps": [50, 10]}
    dep = api.client.get(f"{BASE}/churn-api", headers=api.as_admin()).json()
    api.client.post(f"{BASE}/churn-api/rollback", headers=api.as_admin())
    r = api.client.patch(f"{BASE}/churn-api", json=bad, headers=api.as_admin())
    assert r.status_code == 400
    assert "steps" in r.json()["message"]
    assert len(
        api.client.get(f"{BASE}/churn-api", headers=api.as_admin()).json()["revisions"]
    ) == len(dep["revisions"])
    scaling = api.client.patch(f"{BASE}/churn-api", json={"scaling": {"max_replicas": 2}},
                               headers=api.as_admin())  # fmt: skip
    assert scaling.status_code == 200
    assert scaling.json()["scaling"]["max_replicas"] == 2


def test_delete_marks_deleting_and_viewers_cannot_write(api: Api) -> None:
    register(api)
    create(api)
    viewer = api.auth(api.token_for("vera", Role.VIEWER))
    assert api.client.get(f"{BASE}/churn-api", headers=viewer).status_code == 200
    assert api.client.delete(f"{BASE}/churn-api", headers=viewer).status_code == 403
    r = api.client.delete(f"{BASE}/churn-api", headers=api.as_admin())
    assert r.status_code == 202
    assert r.json()["status"] == "deleting"


# --- other backends: the recorded spec and rendered manifests ----------------------


def create_on(api: Api, name: str = "churn-api", **body: Any) -> Any:
    payload = {"name": name, "model": "models:/churn@production", **body}
    return api.client.post(BASE, json=payload, headers=api.as_admin())


def test_a_kubernetes_deployment_is_recorded_with_its_defaults(api: Api) -> None:
    register(api)
    r = create_on(api, scaling={"min_replicas": 0, "max_replicas": 20},
               backend={"kind": "kubernetes", "namespace": "ml"})  # fmt: skip
    assert r.status_code == 201, r.text
    dep = r.json()
    assert dep["backend"]["kind"] == "kubernetes"
    assert dep["backend"]["namespace"] == "ml"
    assert dep["backend"]["autoscaler"] == "keda"  # min 0: the autoscaler that scales to zero
    assert dep["backend"]["image"].startswith("ghcr.io/modelyard/runtime:")
    assert dep["endpoint"] == "http://churn-api.ml.svc.cluster.local/"
    again = api.client.get(f"{BASE}/churn-api", headers=api.as_admin()).json()
    assert again["backend"] == dep["backend"]
    # The machine's replica cap (MODELYARD_MAX_REPLICAS) is for local processes only.
    assert dep["scaling"]["max_replicas"] == 20


def test_a_local_deployment_says_so(api: Api) -> None:
    register(api)
    dep = create_on(api).json()
    assert dep["backend"] == {"kind": "local", "namespace": "", "autoscaler": "",
                              "address": "", "image": ""}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"backend": {"kind": "kubernetes", "autoscaler": "hpa"}}, "cannot scale to zero"),
        ({"backend": {"kind": "ray"}}, "needs --address"),
        ({"backend": {"kind": "ray", "address": "nowhere"}}, "ray address"),
        ({"backend": {"kind": "local", "namespace": "ml"}}, "--namespace applies only"),
        ({"backend": {"kind": "kubernetes", "namespace": "ML!"}}, "namespace"),
        ({"backend": {"kind": "nomad"}}, "kind"),
        ({"backend": {"kind": "kubernetes", "replicas": 3}}, "replicas"),
    ],
)
def test_bad_backends_are_400s_that_write_nothing(
    api: Api, body: dict[str, Any], fragment: str
) -> None:
    register(api)
    status, message = error(create_on(api, **body))
    assert status == 400
    assert fragment in message
    assert api.client.get(BASE, headers=api.as_admin()).json() == []


def _render(api: Api, name: str, **params: str) -> Any:
    return api.client.get(f"{BASE}/{name}/manifests", params=params, headers=api.as_admin())


def test_manifests_render_a_local_deployment_for_kubernetes(api: Api) -> None:
    register(api)
    assert create_on(api, scaling={"min_replicas": 1, "max_replicas": 3}).status_code == 201
    r = _render(api, "churn-api", namespace="ml", autoscaler="hpa")
    assert r.status_code == 200, r.text
    docs = [yaml.safe_load(text) for text in r.json()["files"].values()]
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "NetworkPolicy", "ServiceMonitor"} <= kinds  # fmt: skip
    assert all(d["metadata"]["namespace"] == "ml" for d in docs)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["metadata"]["name"] == "churn-api-r1"


def test_manifests_take_the_deployments_own_options(api: Api) -> None:
    register(api)
    create_on(api, scaling={"min_replicas": 0}, backend={"kind": "kubernetes", "namespace": "ml"})
    docs = [yaml.safe_load(t) for t in _render(api, "churn-api").json()["files"].values()]
    assert "ScaledObject" in {d["kind"] for d in docs}
    assert {d["metadata"]["namespace"] for d in docs} == {"ml"}


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"autoscaler": "hpa"}, 400, "cannot scale to zero"),
        ({"kind": "ray"}, 400, "kind"),
        ({"image": "not an image"}, 400, "image"),
    ],
)
def test_bad_render_options_are_400s(
    api: Api, params: dict[str, str], status: int, fragment: str
) -> None:
    register(api)
    create_on(api, scaling={"min_replicas": 0})
    r = _render(api, "churn-api", **params)
    assert r.status_code == status, r.text
    assert fragment in r.json()["message"]


def test_rendering_a_deployment_that_does_not_exist_is_404(api: Api) -> None:
    assert _render(api, "nope").status_code == 404
