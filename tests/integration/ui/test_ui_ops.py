"""The monitoring and cost pages of the web UI over a real store with a fake clock.

What the monitor loop, the budget loop and the controller would have recorded (drift
results, alert rule states and history, live samples, replica lifetimes) is written
straight into the store; budgets, quotas and tags go through the services. Every figure
checked is one seeded here (or priced from it with the catalog's rates).
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from markupsafe import escape

from modelyard.auth import LOCAL_PRINCIPAL
from modelyard.core.clock import FakeClock
from modelyard.core.deployments import Replica, RevisionDraft, RuntimeSettings, ScalingConfig
from modelyard.core.entities import Role
from modelyard.core.monitoring import MonitorSample
from modelyard.testing.harness import Api


def _escaped(text: str) -> str:
    """``text`` as Jinja2's autoescaping writes it (markupsafe: ``&#34;`` for quotes)."""
    return str(escape(text))


XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
MON = "/ui/p/default/monitoring"
COST = "/ui/p/default/cost"


def _row(page: str, attribute: str, value: str) -> str:
    """The HTML of the table row carrying ``attribute="value"`` (escaped as rendered)."""
    found = re.search(rf'<tr {attribute}="{re.escape(_escaped(value))}".*?</tr>', page, flags=re.S)
    assert found is not None, f"no row {attribute}={value!r}"
    return found.group(0)


def _inert(page: str) -> None:
    """No payload made it into the page raw, and each is shown escaped."""
    for payload in XSS:
        assert payload not in page
        assert _escaped(payload) in page


def _replica(rid: str, dep_id: int, start_ms: int, stop_ms: int | None) -> Replica:
    return Replica(
        id=rid,
        deployment_id=dep_id,
        revision=1,
        pid=0,
        port=0,
        state="ready" if stop_ms is None else "stopped",
        mode="fork",
        standby=False,
        cpu=2.0,
        memory_mb=2048,
        started_at_ms=start_ms,
        ready_at_ms=start_ms,
        stopped_at_ms=stop_ms,
        exit_reason="",
    )


def _deploy(api: Api, name: str, project: str = "default") -> int:
    settings = RuntimeSettings(cpu=2.0, memory_mb=2048)
    dep = api.ctx.store.deployments.create(
        project,
        name,
        ScalingConfig(),
        RevisionDraft("churn", 1, "models:/churn/1", settings, weight=100),
        "admin",
    )
    return dep.id


def _feature(
    column: str,
    test: str,
    score: float,
    *,
    drifted: bool = False,
    p_value: bool = True,
    threshold: float = 0.05,
) -> dict[str, Any]:
    """One feature of a drift report, as :meth:`FeatureDrift.to_json` writes it."""
    return {
        "column": column,
        "kind": "num",
        "test": test,
        "statistic": score,
        "p_value": score if p_value else None,
        "threshold": threshold,
        "drifted": drifted,
        "tested": True,
        "missing_share_current": 0.0,
    }


@pytest.fixture
def world(api: Api, fake_clock: FakeClock) -> dict[str, Any]:
    """churn-api with a drift result (two features, one named with a payload), a firing
    rule, alert history, a live sample, a replica that ran exactly one hour, a budget, a
    quota and a deployment tag holding a payload."""
    ctx = api.ctx
    repo = ctx.store.monitoring
    admin = ctx.auth.authenticate(api.admin_token)
    t_ms = int(fake_clock.now() * 1000)
    dep_id = _deploy(api, "churn-api")
    report = {
        "features": [
            _feature("age", "ks", 0.00123, drifted=True),
            _feature(XSS[0], "ks", 0.5),
            _feature(XSS[1], "wasserstein", 0.02, p_value=False, threshold=0.1),
        ]
    }
    fake_clock.advance(60)
    repo.add_drift(dep_id, t_ms, t_ms + 60_000, "train@v1", 1500, 0.1, False, report)
    fake_clock.advance(60)
    repo.add_drift(dep_id, t_ms, t_ms + 120_000, "train@v1", 1500, 1 / 3, False, report)
    (rule,) = repo.add_rules(
        dep_id,
        ["p99_ms > 50 for 2m"],
        webhook_url="",
        webhook_secret="",
        action="",
        hysteresis=0.1,
        created_by="admin",
    )
    state = {"status": "firing", "fired_at_s": fake_clock.now(), "last_value": 73.5}
    repo.save_state(rule.id, state, [("firing", f"p99 went up {XSS[0]}", {})])
    repo.add_event(dep_id, None, "drift", f"drift not computed: {XSS[1]}")
    values: dict[str, float | None] = {
        "rps": 12.5,
        "p50_ms": 3.0,
        "p99_ms": 73.5,
        "error_rate": 0.02,
        "replicas": 1.0,
    }
    repo.add_samples([MonitorSample(dep_id, int(fake_clock.now() * 1000), 10.0, values)])
    # Cost: one replica ran exactly one hour, an hour ago.
    start_ms = int(fake_clock.now() * 1000) - 7_200_000
    ctx.store.deployments.add_replica(_replica("r1", dep_id, start_ms, start_ms + 3_600_000))
    ctx.cost.set_deployment_tags(admin, "default", "churn-api", {"team": XSS[0]}, [])
    ctx.budgets.set_budget(admin, "default", monthly=300, alert_at=[50, 80, 100])
    ctx.budgets.set_quota(admin, "default", max_replicas=8, max_cpu=16)
    return {"dep": dep_id, "rule": rule.id}


# ---- monitoring -------------------------------------------------------------------------


def test_overview_lists_each_deployment_with_drift_alerts_and_traffic(
    api: Api, world: dict[str, Any]
) -> None:
    page = api.browser().get(MON)
    assert page.status_code == 200, page.text
    assert 'id="monitoring"' in page.text
    row = _row(page.text, "data-deployment", "churn-api")
    assert f'href="{MON}/churn-api"' in row
    assert "no drift" in row
    assert "0.3333" in row
    assert "age" in row
    assert "0.00123" in row
    assert "1 firing" in row
    assert "1 rule" in row
    assert "12.5" in row
    assert "73.5 ms" in row
    assert "2.0%" in row


def test_old_traffic_is_not_shown_as_live(
    api: Api, fake_clock: FakeClock, world: dict[str, Any]
) -> None:
    fake_clock.advance(16 * 60)
    b = api.browser()
    row = _row(b.get(MON).text, "data-deployment", "churn-api")
    assert "12.5" not in row
    assert "73.5 ms" not in row
    assert '<div class="value">12.5</div>' not in b.get(f"{MON}/churn-api").text


def test_deployment_page_shows_drift_per_feature_rules_and_history(
    api: Api, world: dict[str, Any]
) -> None:
    page = api.browser().get(f"{MON}/churn-api")
    assert page.status_code == 200, page.text
    text = page.text
    age = _row(text, "data-feature", "age")
    assert "0.00123" in age
    assert "0.05" in age
    assert "drifted" in age
    assert "ks" in age
    other = _row(text, "data-feature", XSS[1])
    assert "wasserstein" in other
    assert ">ok<" in other
    # A chart of each feature's score, from both drift results.
    assert 'data-chart="drift-share"' in text
    assert 'data-chart="drift-f1"' in text
    rules = re.search(r'<table class="grid" id="alert-rules">.*?</table>', text, flags=re.S)
    assert rules is not None
    assert "p99_ms &gt; 50 for 2m" in rules.group(0)
    assert "state-firing" in rules.group(0)
    assert "73.5" in rules.group(0)
    history = re.search(r'<table class="grid" id="alert-history">.*?</table>', text, flags=re.S)
    assert history is not None
    assert history.group(0).index("drift not computed") < history.group(0).index("p99 went up")
    assert "No labels joined yet" in text
    _inert(text)


def test_alert_history_pages_back_with_before(api: Api, world: dict[str, Any]) -> None:
    for i in range(105):
        api.ctx.store.monitoring.add_event(world["dep"], None, "drift", f"note {i}")
    b = api.browser()
    first = b.get(f"{MON}/churn-api")
    assert "note 104" in first.text
    assert "note 4<" not in first.text
    older = re.search(r'href="([^"]*before=(\d+)[^"]*)">Older', first.text)
    assert older is not None
    second = b.get(html.unescape(older.group(1)))
    assert second.status_code == 200
    assert "note 4<" in second.text
    assert "note 104" not in second.text
    assert "p99 went up" in second.text


def test_unknown_or_foreign_deployment_is_a_404_page(api: Api, world: dict[str, Any]) -> None:
    api.ctx.auth.create_project(LOCAL_PRINCIPAL, "other")
    _deploy(api, "secret-api", project="other")
    b = api.browser()
    for url in (f"{MON}/nope", f"{MON}/secret-api", f"{COST}/deployments/secret-api"):
        page = b.get(url)
        assert page.status_code == 404, url
        assert "text/html" in page.headers["content-type"]
        assert "Not found" in page.text


@pytest.mark.parametrize("query", ["before=x", "before=0", "before=-3"])
def test_bad_query_parameters_are_a_400_page(api: Api, world: dict[str, Any], query: str) -> None:
    for url in (f"{MON}/churn-api?{query}", f"{COST}?{query}"):
        page = api.browser().get(url)
        assert page.status_code == 400, url
        assert "before" in page.text


def test_editor_silences_and_ends_a_silence(
    api: Api, fake_clock: FakeClock, world: dict[str, Any]
) -> None:
    b = api.browser("erin", Role.EDITOR)
    page = b.get(f"{MON}/churn-api")
    assert 'id="silence-form"' in page.text
    done = b.post(
        f"{MON}/churn-api/silences",
        {"duration": "4h", "rule": "p99_ms > 50 for 2m", "comment": XSS[1]},
    )
    assert (done.status_code, done.headers["location"]) == (303, f"{MON}/churn-api")
    page = b.get(f"{MON}/churn-api")
    silence = api.ctx.store.monitoring.silences(world["dep"])[0]
    row = _row(page.text, "data-silence", str(silence.id))
    assert "p99_ms &gt; 50 for 2m" in row
    assert "erin" in row
    assert "End now" in row
    assert 'hx-confirm="End this silence now?' in row
    _inert(page.text)
    ended = b.post(f"{MON}/churn-api/silences/{silence.id}/expire")
    assert ended.status_code == 303
    now_ms = int(fake_clock.now() * 1000)
    assert api.ctx.store.monitoring.silences(world["dep"], active_at_ms=now_ms) == []
    # Refusals: an unknown duration or silence, a silence of another deployment.
    assert b.post(f"{MON}/churn-api/silences", {"duration": "1y"}).status_code == 400
    assert b.post(f"{MON}/churn-api/silences/999/expire").status_code == 404
    assert b.post(f"{MON}/churn-api/silences/abc/expire").status_code == 400
    assert b.post(f"{MON}/nope/silences", {"duration": "1h"}).status_code == 404


def test_viewer_reads_every_page_but_cannot_silence(api: Api, world: dict[str, Any]) -> None:
    b = api.browser("vera", Role.VIEWER)
    for url in (MON, f"{MON}/churn-api", COST, f"{COST}/deployments/churn-api"):
        page = b.get(url)
        assert page.status_code == 200, url
        assert page.text.count('method="post"') == page.text.count('action="/ui/logout"')
        assert "hx-post" not in page.text
    assert b.post(f"{MON}/churn-api/silences", {"duration": "1h"}).status_code == 403
    assert b.post(f"{MON}/churn-api/silences/1/expire").status_code == 403
    assert api.ctx.store.monitoring.silences(world["dep"]) == []


def test_a_post_without_the_csrf_token_is_refused(api: Api, world: dict[str, Any]) -> None:
    b = api.browser()
    refused = b.post(f"{MON}/churn-api/silences", {"duration": "1h"}, csrf=False)
    assert refused.status_code == 403
    assert api.ctx.store.monitoring.silences(world["dep"]) == []


# ---- cost -------------------------------------------------------------------------------


def _hour_of_replica(api: Api) -> float:
    return api.ctx.cost.catalog.replica_second(2.0, 2.0) * 3600


def test_cost_page_shows_the_period_per_deployment_budget_and_quota(
    api: Api, world: dict[str, Any]
) -> None:
    page = api.browser().get(f"{COST}?period=7d")
    assert page.status_code == 200, page.text
    text = page.text
    expected = f"{_hour_of_replica(api):,.2f} USD"
    row = _row(text, "data-deployment", "churn-api")
    assert expected in row
    assert f'{COST}/deployments/churn-api?period=7d"' in row
    assert 'id="daily-spend"' in text
    assert '"time":true' in text.replace(" ", "")
    budget = re.search(r'<section id="budget">.*?</section>', text, flags=re.S)
    assert budget is not None
    assert "300.00 USD" in budget.group(0)
    assert "within budget" in budget.group(0)
    assert 'data-threshold="80.0"' in budget.group(0)
    quota = re.search(r'<section id="quota">.*?</section>', text, flags=re.S)
    assert quota is not None
    assert ">8<" in quota.group(0)
    assert ">16<" in quota.group(0)
    history = re.search(r'<table class="grid" id="budget-history">.*?</table>', text, flags=re.S)
    assert history is not None
    assert "budget set: 300 USD per month" in history.group(0)
    assert "quota set" in history.group(0)
    assert XSS[0] not in text
    assert _escaped(XSS[0]) in text


def test_cost_page_defaults_to_this_month(api: Api, world: dict[str, Any]) -> None:
    page = api.browser().get(COST)
    assert page.status_code == 200, page.text
    assert "this month (2023-11)" in page.text  # the fake clock's month
    assert f"{_hour_of_replica(api):,.2f} USD" in _row(page.text, "data-deployment", "churn-api")


@pytest.mark.parametrize("period", ["bogus", "2099-01", "2026-13", "0d", "9999d", "1969-12"])
def test_a_bad_period_is_a_400_page(api: Api, world: dict[str, Any], period: str) -> None:
    b = api.browser()
    for url in (f"{COST}?period={period}", f"{COST}/deployments/churn-api?period={period}"):
        page = b.get(url)
        assert page.status_code == 400, (url, page.text)
        assert "text/html" in page.headers["content-type"]
        assert "period" in page.text or "since" in page.text


def test_deployment_cost_page_breaks_the_cost_down(api: Api, world: dict[str, Any]) -> None:
    page = api.browser().get(f"{COST}/deployments/churn-api?period=1d")
    assert page.status_code == 200, page.text
    text = page.text
    cost = f"{_hour_of_replica(api):,.2f} USD"
    revision = _row(text, "data-revision", "1")
    assert cost in revision
    assert ">1<" in revision
    assert 'id="deployment-spend"' in text
    assert 'id="deployment-requests"' in text
    tags = re.search(r'<table class="grid kv" id="deployment-tags">.*?</table>', text, flags=re.S)
    assert tags is not None
    assert _escaped(XSS[0]) in tags.group(0)
    assert XSS[0] not in text
    assert api.browser().get(f"{COST}/deployments/never-was").status_code == 404


def test_budget_webhook_text_is_inert(api: Api, world: dict[str, Any]) -> None:
    admin = api.ctx.auth.authenticate(api.admin_token)
    hook = "http://127.0.0.1:9/x?a=<script>alert(1)</script>"
    api.ctx.budgets.set_budget(admin, "default", monthly=250, webhook=hook)
    page = api.browser().get(COST)
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert _escaped(hook) in page.text
    assert "250.00 USD" in page.text
