"""The deployments pages: list, one deployment with its live section, rollback, promote.

No process runs here: replicas, scale events and monitor samples are records written
to the store, as the controller and the monitor loop would write them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from modelyard.auth import LOCAL_PRINCIPAL
from modelyard.core.clock import FakeClock
from modelyard.core.deployments import EventDraft, Replica, ReplicaState
from modelyard.core.entities import ArtifactEntry, Role
from modelyard.core.monitoring import MonitorSample
from modelyard.deploy._rollout import RolloutView, advance
from modelyard.store import DeploymentChange
from modelyard.testing.harness import Api

SCRIPT = "<script>alert(1)</script>"
SCRIPT_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
API = "/api/v1/projects/default/deployments"
PAGE = "/ui/p/default/deployments/churn-api"
HTMX = {"HX-Request": "true"}


def _now_ms(api: Api) -> int:
    return int(api.ctx.clock.now() * 1000)


def _replica(rid: str, dep_id: int, state: ReplicaState, started_ms: int, **kw: Any) -> Replica:
    return Replica(
        id=rid,
        deployment_id=dep_id,
        revision=kw.get("revision", 1),
        pid=kw.get("pid", 4242),
        port=kw.get("port", 40001),
        state=state,
        mode="fork",
        standby=kw.get("standby", False),
        cpu=1.0,
        memory_mb=512,
        started_at_ms=started_ms,
        ready_at_ms=started_ms + 500 if state == "ready" else None,
        stopped_at_ms=None,
        exit_reason="",
    )


@pytest.fixture
def dep_id(api: Api) -> int:
    """churn (v1, v2; production -> 1) deployed as churn-api: one ready replica, one
    starting, a standby; a scale decision to 2; a live sample; an event with a script."""
    store = api.ctx.store
    for i in range(2):
        digest = f"{i + 1:x}" * 64
        store.registry.create_version(
            "default",
            "churn",
            source_run_id=None,
            source_uri="upload",
            flavor="sklearn",
            signature_json="",
            package_digest=digest,
            files=[ArtifactEntry("modelyard.yaml", digest, 10)],
            user="admin",
        )
    store.registry.set_alias("default", "churn", "production", 1, "admin")
    created = api.client.post(
        API,
        json={
            "name": "churn-api",
            "model": "models:/churn@production",
            "scaling": {"min_replicas": 1, "max_replicas": 3},
        },
        headers=api.as_admin(),
    )
    assert created.status_code == 201, created.text
    dep = store.deployments.get("churn-api", "default")
    now = _now_ms(api)
    store.deployments.add_replica(_replica("r-ready", dep.id, "ready", now - 60_000))
    store.deployments.add_replica(_replica("r-start", dep.id, "starting", now - 1_000, pid=4243))
    store.deployments.add_replica(
        _replica("r-standby", dep.id, "ready", now - 90_000, pid=4244, standby=True)
    )
    store.deployments.add_events(
        dep.id,
        [
            EventDraft("scale", "1 -> 2: panic", 1, {"desired": 2, "actual": 1}),
            EventDraft("replica", f"replica r-x failed: {SCRIPT}", 1),
        ],
    )
    values: dict[str, float | None] = {
        "rps": 12.5,
        "p50_ms": 3.25,
        "p99_ms": 41.0,
        "error_rate": 0.02,
        "in_flight": 3.0,
    }
    store.monitoring.add_samples(
        [
            MonitorSample(dep.id, now - 20_000, 10.0, {**values, "p99_ms": float("nan")}),
            MonitorSample(dep.id, now - 10_000, 10.0, values),
        ]
    )
    return dep.id


def _live(html: str) -> str:
    found = re.search(r'<div id="live".*', html, re.S)
    assert found is not None, html
    return found.group(0)


def test_list_shows_model_state_and_replicas(api: Api, dep_id: int) -> None:
    page = api.browser().get("/ui/p/default/deployments")
    assert page.status_code == 200, page.text
    row = re.search(r'<tr data-deployment="churn-api">(.*?)</tr>', page.text, re.S)
    assert row is not None
    cells = row.group(1)
    assert 'href="/ui/p/default/deployments/churn-api"' in cells
    assert 'href="/ui/p/default/models/churn/versions/1"' in cells
    assert "models:/churn@production" in cells
    assert re.search(r"<span data-ready-replicas>1</span> / 2", cells)
    assert "http://127.0.0.1:5006/churn-api/" in cells
    assert 'id="deployments"' in page.text


def test_page_shows_header_live_figures_replicas_split_events(api: Api, dep_id: int) -> None:
    page = api.browser().get(PAGE)
    assert page.status_code == 200, page.text
    html = page.text
    assert "policy <code>kpa</code>, 1..3 replicas" in html
    live = _live(html)
    assert 'hx-get="/ui/p/default/deployments/churn-api/live"' in live
    assert 'hx-trigger="every 2s"' in live
    assert 'hx-swap="outerHTML"' in live
    assert re.search(r"data-ready-replicas>1</div>", live)
    for figure in ("12.5", "3.25 ms", "41 ms", "2%"):
        assert figure in live, figure
    replicas = live.split('id="replicas"')[1].split("</table>")[0]
    assert replicas.count("<tr data-replica=") == 3
    assert "pid 4243" in replicas
    assert 'style="width:100%"' in live.split('id="traffic-split"')[1]
    events = live.split('id="events"')[1].split("</table>")[0]
    assert "1 -&gt; 2: panic" in events
    assert "created: models:/churn@production" in events
    assert SCRIPT not in html
    assert SCRIPT_ESCAPED in events
    assert 'id="rollback"' in live  # an admin may roll back
    islands = re.findall(
        r'<script type="application/json" id="(chart-[a-z]+)">(.*?)</script>', html
    )
    assert [name for name, _ in islands] == ["chart-rps", "chart-latency", "chart-errors"]
    latency = json.loads(dict(islands)["chart-latency"])
    assert latency["series"][1]["y"] == [None, 41.0]  # NaN became null
    assert '<meta name="htmx-config"' in html


def test_live_fragment_is_the_section_alone(api: Api, dep_id: int) -> None:
    fragment = api.browser().get(f"{PAGE}/live", headers=HTMX)
    assert fragment.status_code == 200, fragment.text
    assert fragment.text.lstrip().startswith('<div id="live"')
    assert "<html" not in fragment.text
    assert 'id="replicas"' in fragment.text
    assert 'id="events"' in fragment.text
    api.ctx.store.deployments.update_replica("r-start", state="ready", ready_at_ms=_now_ms(api))
    again = api.browser().get(f"{PAGE}/live", headers=HTMX)
    assert re.search(r"data-ready-replicas>2</div>", again.text)


def test_no_sample_no_invented_numbers(api: Api, dep_id: int, fake_clock: FakeClock) -> None:
    fake_clock.advance(600)
    live = api.browser().get(f"{PAGE}/live", headers=HTMX).text
    assert "No traffic sample in the last 2 minutes" in live
    assert "12.5" not in live


def test_rollback_refused_then_done_through_htmx_and_a_plain_form(api: Api, dep_id: int) -> None:
    browser = api.browser()
    refused = browser.post(f"{PAGE}/rollback", headers=HTMX)
    assert refused.status_code == 409
    assert re.search(r'<p class="flash bad">[^<]*no previous stable revision', refused.text)
    assert refused.text.lstrip().startswith('<div id="live"')
    plain = browser.post(f"{PAGE}/rollback")
    assert plain.status_code == 409
    assert '<p class="flash bad">' in plain.text
    assert 'id="deployment"' in plain.text  # the whole page
    moved = api.client.put(
        f"{API}/churn-api/traffic", json={"weights": {"2": 100}}, headers=api.as_admin()
    )
    assert moved.status_code == 200, moved.text
    done = browser.post(f"{PAGE}/rollback", headers=HTMX)
    assert done.status_code == 200, done.text
    assert '<p class="flash">Rollback requested' in done.text
    dep = api.ctx.store.deployments.get("churn-api", "default")
    assert (dep.weights, dep.stable_revision) == ({1: 100}, 1)
    api.client.put(f"{API}/churn-api/traffic", json={"weights": {"2": 100}}, headers=api.as_admin())
    plain_done = browser.post(f"{PAGE}/rollback")
    assert (plain_done.status_code, plain_done.headers["location"]) == (
        303,
        f"{PAGE}?done=rollback",
    )
    shown = browser.get(plain_done.headers["location"])
    assert '<p class="flash">Rollback requested' in shown.text
    assert SCRIPT not in browser.get(f"{PAGE}?done={SCRIPT}").text


def _canary_at_first_step(api: Api, dep_id: int) -> None:
    started = api.client.patch(
        f"{API}/churn-api",
        json={"model": "models:/churn/2", "strategy": "canary", "steps": [10, 50, 100]},
        headers=api.as_admin(),
    )
    assert started.status_code == 200, started.text
    repo = api.ctx.store.deployments
    dep = repo.get("churn-api", "default")
    assert dep.rollout is not None
    view = RolloutView(_now_ms(api), "ready", "", target_ready=1, stable_ready=1)
    step = advance(dep.rollout, view)
    repo.change(
        dep_id,
        DeploymentChange(
            weights=step.weights, rollout=step.rollout, revision_states={2: ("ready", "")}
        ),
    )


def test_promote_a_canary_sends_all_traffic_to_it(api: Api, dep_id: int) -> None:
    browser = api.browser()
    assert 'id="promote-rollout"' not in browser.get(PAGE).text
    refused = browser.post(f"{PAGE}/promote", headers=HTMX)
    assert refused.status_code == 409
    assert "no canary rollout in progress" in refused.text
    _canary_at_first_step(api, dep_id)
    live = _live(browser.get(PAGE).text)
    assert 'id="promote-rollout"' in live
    rollout = live.split('id="rollout"')[1].split("</table>")[0]
    assert "1 of 3" in rollout
    assert 'data-rollout-percent="10"' in rollout
    assert "stepping" in rollout
    done = browser.post(f"{PAGE}/promote", headers=HTMX)
    assert done.status_code == 200, done.text
    assert '<p class="flash">Promoted' in done.text
    dep = api.ctx.store.deployments.get("churn-api", "default")
    assert (dep.weights, dep.stable_revision) == ({2: 100}, 2)
    assert dep.rollout is not None
    assert not dep.rollout.active
    assert 'id="promote-rollout"' not in done.text


def test_viewer_sees_no_buttons_and_is_refused(api: Api, dep_id: int) -> None:
    _canary_at_first_step(api, dep_id)
    viewer = api.browser("vera", Role.VIEWER)
    page = viewer.get(PAGE)
    assert page.status_code == 200
    assert 'id="rollback"' not in page.text
    assert 'id="promote-rollout"' not in page.text
    assert viewer.get(f"{PAGE}/live", headers=HTMX).status_code == 200
    for action in ("rollback", "promote"):
        assert viewer.post(f"{PAGE}/{action}", headers=HTMX).status_code == 403
        assert viewer.post(f"{PAGE}/{action}").status_code == 403
    dep = api.ctx.store.deployments.get("churn-api", "default")
    assert dep.weights == {2: 10, 1: 90}


def test_posts_without_the_csrf_token_are_refused(api: Api, dep_id: int) -> None:
    _canary_at_first_step(api, dep_id)
    browser = api.browser()
    for action in ("rollback", "promote"):
        refused = browser.post(f"{PAGE}/{action}", csrf=False)
        assert refused.status_code == 403
        assert "CSRF" in refused.text
    assert api.ctx.store.deployments.get("churn-api", "default").weights == {2: 10, 1: 90}


def test_unknown_and_foreign_deployments_are_404_pages(api: Api, dep_id: int) -> None:
    api.ctx.auth.create_project(LOCAL_PRINCIPAL, "other")
    browser = api.browser()
    for url in [
        "/ui/p/default/deployments/ghost",
        "/ui/p/default/deployments/ghost/live",
        "/ui/p/other/deployments/churn-api",
        "/ui/p/other/deployments/churn-api/live",
        "/ui/p/default/deployments/Not%20A%20Name",
    ]:
        page = browser.get(url)
        assert page.status_code == 404, url
        assert "text/html" in page.headers["content-type"]
    for action in ("rollback", "promote"):
        assert browser.post(f"/ui/p/default/deployments/ghost/{action}").status_code == 404
        assert browser.post(f"/ui/p/other/deployments/churn-api/{action}").status_code == 404


def test_empty_list(api: Api) -> None:
    page = api.browser().get("/ui/p/default/deployments")
    assert page.status_code == 200
    assert "Nothing is deployed" in page.text
