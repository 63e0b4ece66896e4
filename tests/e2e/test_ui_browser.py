"""The web UI in a real headless Chromium against a real server, gateway and replicas.

One server and one browser for the module; the tests run in file order and build on each
other like a user's session: sign in, browse and compare runs, promote an alias, watch a
deployment scale, visit the other pages, sign out; then a viewer who cannot promote.
Everything is seeded as a user would: the CLI (passwords, users, a dataset) and the SDK
(runs, models, a deployment). Full-page screenshots of every page visited are written to
``$MODELYARD_SCREENSHOTS`` or ``build/ui-screenshots/`` for review. Waits are Playwright
``expect`` timeouts, never timed assertions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import APIResponse, Browser, Page, expect

from modelyard.client import ModelyardClient
from modelyard.testing._ports import free_port
from modelyard.testing.browser import (
    PageWatch,
    Screenshots,
    chromium_executable,
    headless_chromium,
    screenshot_dir,
)
from modelyard.testing.cli_runner import run_cli
from modelyard.testing.server_process import ServerProcess, reap_orphans, running_server
from modelyard.tracking import fluent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(chromium_executable() is None, reason="no system Chromium"),
]

REPO = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "admin-pass-for-the-browser-test"
VERA_PASSWORD = "vera-only-looks-at-things"
SCRIPT_NAME = "<script>alert(1)</script>"
IMG_PAYLOAD = '"><img src=x onerror=alert(1)>'
FAST = {"stable_window_s": 6.0, "panic_window_s": 2.0, "tick_s": 1.0}
# Final loss of each run (the run table's "loss" column); the filter keeps those < 0.5.
LOSSES = {
    "baseline": 0.95,
    "lr-0.01": 0.62,
    "lr-0.03": 0.41,
    "lr-0.1": 0.28,
    "lr-0.3": 0.35,
    "lr-1.0": 0.71,
    SCRIPT_NAME: 0.88,
}
TRAIN_LOSS = 0.45
WAIT_MS = 15_000
SCALE_WAIT_MS = 90_000


@dataclass
class Site:
    server: ServerProcess
    client: ModelyardClient
    experiment_id: int
    runs: dict[str, str]  # name -> id
    losses: dict[str, float]  # id -> final loss
    shots: Screenshots
    watch: PageWatch = field(default_factory=PageWatch)

    def url(self, path: str) -> str:
        return f"{self.server.uri}{path}"

    def alias_version(self, alias: str) -> int | None:
        _, versions = self.client.get_model("default", "churn")
        return next((v.version for v in versions if alias in v.aliases), None)


def _history(final: float, steps: int = 20) -> list[float]:
    return [final + (1.5 - final) * (1 - s / (steps - 1)) ** 2 for s in range(steps)]


def _log_curves(final_loss: float) -> None:
    import modelyard as my

    for step, loss in enumerate(_history(final_loss)):
        my.log_metrics({"loss": loss, "accuracy": 1 - loss / 2}, step=step)


def _seed(server: ServerProcess, tmp: Path) -> tuple[int, dict[str, str]]:
    """Users and a dataset through the CLI; runs, models and a deployment through the SDK."""
    for done in (
        run_cli(server, "user", "passwd", "admin", "--password-stdin", stdin=ADMIN_PASSWORD),
        run_cli(server, "user", "add", "vera", "--project", "default", "--role", "viewer"),
        run_cli(server, "user", "passwd", "vera", "--password-stdin", stdin=VERA_PASSWORD),
    ):
        assert done.returncode == 0, done.stdout + done.stderr
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    csv = tmp / "churn.csv"
    rows = [f"{a:.5f},{b:.5f},{int(a > 0)}" for a, b in x]
    csv.write_text("f0,f1,label\n" + "\n".join(rows) + "\n")
    added = run_cli(server, "data", "add", str(csv), "--name", "churn-data", "-m", "first cut")
    assert added.returncode == 0, added.stdout + added.stderr

    from sklearn.linear_model import LogisticRegression

    import modelyard as my

    my.set_experiment("churn")
    runs: dict[str, str] = {}
    for name, loss in LOSSES.items():
        with my.start_run(name, tags={"team": "growth"}) as run:
            my.log_params({"lr": name.removeprefix("lr-"), "epochs": 20})
            if name == SCRIPT_NAME:
                my.log_param("note", IMG_PAYLOAD)
                my.set_tag("owner", IMG_PAYLOAD)
            _log_curves(loss)
            runs[name] = run.id
    with my.start_run("train-churn") as run:
        frame = my.use_dataset("churn-data@v1", as_="pandas")
        features = frame[["f0", "f1"]]
        my.log_params({"lr": "0.05", "epochs": 20})
        _log_curves(TRAIN_LOSS)
        for i, c in enumerate((1.0, 0.1), start=1):
            model = LogisticRegression(C=c).fit(features, frame["label"])
            my.log_model(
                model, f"model{i}", input_example=features[:3], registered_model_name="churn"
            )
        runs["train-churn"] = run.id
        experiment_id = run.experiment_id
    my.set_alias("churn", "production", 1)
    return experiment_id, runs


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("ui-browser")
    home = tmp / "home"
    env = {"MODELYARD_MAX_REPLICAS": "4"}
    try:
        with (
            running_server(home, "--gateway-port", str(free_port()), env=env) as server,
            pytest.MonkeyPatch.context() as mp,
        ):
            mp.setenv("MODELYARD_HOME", str(server.home))
            mp.setenv("MODELYARD_TRACKING_URI", server.uri)
            mp.delenv("MODELYARD_TOKEN", raising=False)
            fluent._reset_for_tests()
            client = ModelyardClient(server.uri, server.admin_token)
            try:
                experiment_id, runs = _seed(server, tmp)
                scaling = {"min_replicas": 1, "max_replicas": 3, **FAST}
                model = "models:/churn@production"
                client.create_deployment("default", "churn-api", model, scaling=scaling)
                client.set_budget("default", 50.0)
                losses = {runs[n]: loss for n, loss in LOSSES.items()}
                losses[runs["train-churn"]] = TRAIN_LOSS
                shots = Screenshots(screenshot_dir(REPO))
                yield Site(server, client, experiment_id, runs, losses, shots)
            finally:
                fluent._reset_for_tests()
                client.close()
    finally:
        reap_orphans(home)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with headless_chromium() as b:
        yield b


@pytest.fixture(scope="module")
def page(site: Site, browser: Browser) -> Iterator[Page]:
    """The admin's tab: one context for the whole session, watched for injected script."""
    context = site.watch.attach(browser.new_context(viewport={"width": 1280, "height": 900}))
    context.set_default_timeout(WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def _login(page: Page, site: Site, user: str, password: str) -> None:
    page.goto(site.url("/ui/login"))
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def _force_alias(page: Page, site: Site, alias: str, version: int) -> APIResponse:
    """POST the promote form's fields straight from the page's session, as a script could,
    with the CSRF token taken from the page (the sign-out form carries it)."""
    csrf = page.locator("form input[name=csrf_token]").first.input_value()
    assert csrf
    return page.request.post(
        site.url("/ui/p/default/models/churn/aliases"),
        form={"alias": alias, "version": str(version), "csrf_token": csrf},
        max_redirects=0,
    )


def _row_ids(page: Page) -> list[str]:
    rows = page.locator("table#runs tr[data-run-id]")
    return [rows.nth(i).get_attribute("data-run-id") or "" for i in range(rows.count())]


def test_1_login_refuses_a_wrong_password_then_signs_in(site: Site, page: Page) -> None:
    _login(page, site, "admin", "not-the-password")
    expect(page.locator(".flash.bad")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/ui/login"))
    site.shots.take(page, "login")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(site.url("/ui/p/default/experiments"))
    site.shots.take(page, "experiments")


def test_2_browse_filter_sort_and_open_runs(site: Site, page: Page) -> None:
    page.click(f'main a[href$="/experiments/{site.experiment_id}"]')
    rows = page.locator("table#runs tr[data-run-id]")
    expect(rows).to_have_count(len(site.runs))
    # A run named <script>...</script> is shown as that text; nothing ran (see test_9).
    xss_row = page.locator(f'tr[data-run-id="{site.runs[SCRIPT_NAME]}"]')
    expect(xss_row.get_by_role("link", name=SCRIPT_NAME, exact=True)).to_be_visible()
    expect(page.locator("table#runs script")).to_have_count(0)
    site.shots.take(page, "runs-table")

    page.fill("form#run-filter input[name=filter]", "metrics.loss < 0.5")
    page.press("form#run-filter input[name=filter]", "Enter")
    kept = {i for i, loss in site.losses.items() if loss < 0.5}
    expect(rows).to_have_count(len(kept))
    assert set(_row_ids(page)) == kept

    header = page.locator("table#runs thead th").filter(has_text=re.compile(r"\bloss\b"))
    header.locator("a").first.click()
    expect(page).to_have_url(re.compile(r"order="))
    shown = _row_ids(page)
    by_loss = sorted(shown, key=site.losses.__getitem__)
    assert shown in (by_loss, by_loss[::-1]), "clicking the loss header sorts by loss"
    site.shots.take(page, "runs-filtered-sorted")

    train = site.runs["train-churn"]
    page.click(f'tr[data-run-id="{train}"] a[href$="/runs/{train}"]')
    expect(page.locator("table#params")).to_be_visible()
    expect(page.locator("table#metrics")).to_contain_text("loss")
    expect(page.locator("div[data-chart] canvas").first).to_be_visible()
    site.shots.take(page, "run-detail")

    page.goto(site.url(f"/ui/p/default/runs/{site.runs[SCRIPT_NAME]}"))
    expect(page.locator("table#params")).to_contain_text(IMG_PAYLOAD)
    expect(page.locator('img[src="x"]')).to_have_count(0)
    site.shots.take(page, "run-detail-xss")


def test_3_compare_three_runs(site: Site, page: Page) -> None:
    page.goto(site.url(f"/ui/p/default/experiments/{site.experiment_id}"))
    chosen = [site.runs["lr-0.1"], site.runs["baseline"], site.runs[SCRIPT_NAME]]
    button = page.locator("form.compare button[type=submit]")
    for run_id in chosen:
        page.check(f'tr[data-run-id="{run_id}"] input[name=run]')
    expect(button).to_be_enabled()
    button.click()
    columns = page.locator("table#compare th[data-run-id]")
    expect(columns).to_have_count(3)
    assert {columns.nth(i).get_attribute("data-run-id") for i in range(3)} == set(chosen)
    xss_column = page.locator(f'table#compare th[data-run-id="{site.runs[SCRIPT_NAME]}"]')
    expect(xss_column).to_contain_text(SCRIPT_NAME)
    expect(page.locator("div[data-chart] canvas").first).to_be_visible()
    site.shots.take(page, "compare")


def test_4_promote_an_alias(site: Site, page: Page) -> None:
    page.goto(site.url("/ui/p/default/models"))
    expect(page.locator("table#models")).to_contain_text("churn")
    site.shots.take(page, "models")
    page.goto(site.url("/ui/p/default/models/churn"))
    production = page.locator('table#aliases tr[data-alias="production"]')
    expect(production).to_contain_text("v1")
    site.shots.take(page, "model-before-promote")

    page.fill("form#promote input[name=alias]", "production")
    page.select_option("form#promote select[name=version]", "2")
    page.click("button#promote-button")
    expect(production).to_contain_text("v2")
    assert site.alias_version("production") == 2
    expect(page.locator("table#alias-history tbody tr")).to_have_count(2)  # set, then moved
    site.shots.take(page, "model-after-promote")
    # The same forced POST the viewer tries in test_8 works for an editor: her 403 is
    # about her role, not about the request.
    editor = _force_alias(page, site, "staging", 1)
    assert editor.status == 303, editor.text()[:500]
    assert site.alias_version("staging") == 1

    page.click('table#versions tr[data-version="2"] a[href$="/versions/2"]')
    expect(page.locator("section#signature")).to_contain_text("f0")
    site.shots.take(page, "model-version")


def test_5_a_deployment_scales_while_the_page_watches(site: Site, page: Page) -> None:
    page.goto(site.url("/ui/p/default/deployments"))
    expect(page.locator("table#deployments")).to_contain_text("churn-api")
    site.shots.take(page, "deployments")
    page.click('table#deployments a[href$="/deployments/churn-api"]')
    ready = page.locator("div#live [data-ready-replicas]")
    expect(ready).to_have_text("1", timeout=SCALE_WAIT_MS)
    site.shots.take(page, "deployment")

    site.client.update_deployment("default", "churn-api", scaling={"min_replicas": 2})
    url = page.url
    expect(ready).to_have_text("2", timeout=SCALE_WAIT_MS)  # htmx polling, no reload
    assert page.url == url
    expect(page.locator("table#replicas tbody tr")).not_to_have_count(0)
    expect(page.locator("button#rollback")).to_have_count(1)  # an admin may roll back
    site.shots.take(page, "deployment-scaled")


def test_6_datasets_monitoring_cost_lineage_and_404(site: Site, page: Page) -> None:
    page.goto(site.url("/ui/p/default/datasets"))
    expect(page.locator("table#datasets")).to_contain_text("churn-data")
    site.shots.take(page, "datasets")
    page.click('table#datasets a[href$="/datasets/churn-data"]')
    expect(page.locator("table#versions")).to_be_visible()
    page.click('table#versions tr[data-version="1"] a[href*="/versions/"]')
    expect(page.locator("section#profile")).to_contain_text("f0")
    expect(page.locator(f'a[href$="/runs/{site.runs["train-churn"]}"]').first).to_be_visible()
    site.shots.take(page, "dataset-version")

    page.goto(site.url("/ui/p/default/monitoring"))
    expect(page.locator("table#monitoring")).to_contain_text("churn-api")
    site.shots.take(page, "monitoring")
    page.goto(site.url("/ui/p/default/cost"))
    expect(page.locator("section#budget")).to_be_visible()
    expect(page.locator("table#cost-deployments")).to_be_visible()
    site.shots.take(page, "cost")

    page.goto(site.url(f"/ui/p/default/runs/{site.runs['train-churn']}"))
    page.locator('main a[href*="/lineage/"]').first.click()
    graph = page.locator("svg.lineage")
    expect(graph).to_be_visible()
    for kind in ("dataset", "run", "model", "deployment"):
        expect(graph.locator(f'g.node[data-kind^="{kind}"]').first).to_be_visible()
    expect(graph.locator("g.node.focus")).to_have_count(1)
    site.shots.take(page, "lineage")

    response = page.goto(site.url("/ui/p/default/runs/doesnotexist"))
    assert response is not None
    assert response.status == 404
    expect(page.locator("main")).to_contain_text("404")
    site.shots.take(page, "not-found")


def test_7_logout(site: Site, page: Page) -> None:
    page.goto(site.url("/ui/p/default/experiments"))
    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/ui/login"))
    page.goto(site.url("/ui/p/default/experiments"))
    expect(page).to_have_url(re.compile(r"/ui/login"))
    expect(page.locator("input[name=password]")).to_be_visible()


def test_8_a_viewer_sees_no_promote_and_is_refused(site: Site, browser: Browser) -> None:
    context = site.watch.attach(browser.new_context(viewport={"width": 1280, "height": 900}))
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        _login(page, site, "vera", VERA_PASSWORD)
        expect(page).to_have_url(site.url("/ui/p/default/experiments"))
        page.goto(site.url("/ui/p/default/models/churn"))
        expect(page.locator('table#aliases tr[data-alias="production"]')).to_contain_text("v2")
        expect(page.locator("form#promote")).to_have_count(0)
        site.shots.take(page, "viewer-model")
        page.goto(site.url("/ui/p/default/deployments/churn-api"))
        expect(page.locator("div#live [data-ready-replicas]")).to_be_visible()
        expect(page.locator("button#rollback")).to_have_count(0)
        site.shots.take(page, "viewer-deployment")

        forced = _force_alias(page, site, "production", 1)
        assert forced.status == 403, forced.text()[:500]
        assert site.alias_version("production") == 2
    finally:
        context.close()


def test_9_no_injected_script_ran(site: Site) -> None:
    assert site.watch.dialogs == [], "an alert/prompt opened: a payload ran"
    assert site.watch.errors == [], "script errors or CSP violations on the pages"
    assert all(shot.stat().st_size > 0 for shot in site.shots.taken)
