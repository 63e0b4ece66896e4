"""The registry pages: models, a model's versions and aliases, moving an alias, a version."""

from __future__ import annotations

import json
import re

from modelyard.auth import LOCAL_PRINCIPAL
from modelyard.core.entities import ArtifactEntry, Role
from modelyard.core.lineage import Edge, EdgeType, NodeKey, NodeKind
from modelyard.testing.harness import Api

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
SCRIPT_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
IMG_ESCAPED = "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"
RUN_ID = "a" * 32
BASE = "/ui/p/default/models"


def _assert_inert(html: str) -> None:
    assert SCRIPT not in html
    assert IMG not in html
    assert "<img" not in html


def seed(api: Api, *, versions: int = 2, project: str = "default") -> None:
    """Model ``churn`` (XSS in its description and tags) with ``versions`` versions from a
    run named like a script tag; the first has a signature and reads a dataset."""
    store = api.ctx.store
    if project == "default":
        store.tracking.create_run(
            run_id=RUN_ID,
            experiment_id=0,
            name=SCRIPT,
            user="admin",
            start_time_ms=1_700_000_000_000,
            tags={},
            parent_run_id=None,
        )
    store.registry.create_model(project, "churn", description=IMG, tags={"team": SCRIPT})
    signature = {
        "inputs": {
            "type": "columns",
            "columns": [{"name": "age", "dtype": "int64"}, {"name": SCRIPT, "dtype": "float64"}],
        },
        "outputs": {"type": "tensor", "dtype": "float32", "shape": [-1, 2]},
    }
    for i in range(versions):
        digest = f"{i + 1:x}" * 64
        store.registry.create_version(
            project,
            "churn",
            source_run_id=RUN_ID if project == "default" else None,
            source_uri=f"runs:/{RUN_ID}/model",
            flavor="sklearn",
            signature_json=json.dumps(signature) if i == 0 else "",
            package_digest=digest[:64],
            files=[ArtifactEntry("modelyard.yaml", digest[:64], 10)],
            user="admin",
            description=SCRIPT,
            tags={"note": IMG},
        )
    store.registry.set_alias(project, "churn", "production", 1, "admin")
    if project == "default":
        version, _ = store.data.commit_version(
            "default",
            "credit",
            [ArtifactEntry("data.csv", "c" * 64, 5)],
            manifest_digest="d" * 64,
            user="admin",
        )
        row_id, _ = store.data.version_id("default", "credit", version.version)
        store.lineage.add_edge(
            Edge(
                NodeKey(NodeKind.DATASET_VERSION, str(row_id)),
                NodeKey(NodeKind.RUN, RUN_ID),
                EdgeType.INPUT,
            )
        )


def test_models_list_shows_versions_and_aliases_and_escapes(api: Api) -> None:
    seed(api)
    page = api.browser().get(BASE)
    assert page.status_code == 200, page.text
    assert 'id="models"' in page.text
    assert f'href="{BASE}/churn"' in page.text
    assert f'href="{BASE}/churn/versions/2"' in page.text
    assert "production → v1" in page.text
    _assert_inert(page.text)
    assert SCRIPT_ESCAPED in page.text


def test_model_page_lists_versions_aliases_history_and_escapes(api: Api) -> None:
    seed(api)
    page = api.browser().get(f"{BASE}/churn")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'tr data-version="1"' in html
    assert 'tr data-version="2"' in html
    alias_row = re.search(r'<tr data-alias="production">(.*?)</tr>', html, re.S)
    assert alias_row is not None
    assert "v1" in alias_row.group(1)
    assert 'id="alias-history"' in html
    assert f'href="/ui/p/default/runs/{RUN_ID}"' in html
    assert 'id="promote"' in html
    assert 'id="promote-button"' in html
    _assert_inert(html)
    assert SCRIPT_ESCAPED in html  # the run name, the tag, the version description
    assert IMG_ESCAPED in html


def test_promote_through_the_form_moves_the_alias_and_records_it(api: Api) -> None:
    seed(api)
    browser = api.browser()
    done = browser.post(f"{BASE}/churn/aliases", {"alias": "production", "version": "2"})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{BASE}/churn?moved=production"
    caller = api.ctx.auth.authenticate(api.admin_token)
    assert api.ctx.registry.get_model(caller, "default", "churn").aliases["production"] == 2
    page = browser.get(done.headers["location"])
    alias_row = re.search(r'<tr data-alias="production">(.*?)</tr>', page.text, re.S)
    assert alias_row is not None
    assert "v2" in alias_row.group(1)
    assert 'class="flash"' in page.text
    assert "now points to version 2" in page.text
    history = page.text.split('id="alias-history"')[1]
    assert re.search(r"<td>production</td>\s*<td>v1</td>\s*<td>v2</td>", history)
    # htmx gets a redirect header instead of a 303
    again = browser.post(
        f"{BASE}/churn/aliases",
        {"alias": "staging", "version": "1"},
        headers={"HX-Request": "true"},
    )
    assert (again.status_code, again.headers["hx-redirect"]) == (204, f"{BASE}/churn?moved=staging")


def test_the_success_line_never_echoes_the_query(api: Api) -> None:
    seed(api)
    page = api.browser().get(f"{BASE}/churn", params={"moved": SCRIPT})
    assert page.status_code == 200
    assert 'class="flash"' not in page.text
    _assert_inert(page.text)


def test_bad_alias_or_version_re_renders_the_page_with_400(api: Api) -> None:
    seed(api)
    browser = api.browser()
    for fields, fragment in [
        ({"alias": "latest", "version": "1"}, "reserved"),
        ({"alias": "9lives", "version": "1"}, "is invalid"),
        ({"alias": IMG, "version": "1"}, "is invalid"),
        ({"alias": "production", "version": "99"}, "no version 99"),
        ({"alias": "production", "version": "two"}, "version must be a version number"),
        ({"alias": "production", "version": str(2**70)}, "version must be a version number"),
    ]:
        page = browser.post(f"{BASE}/churn/aliases", fields)
        assert page.status_code == 400, (fields, page.text)
        bad = re.search(r'<p class="flash bad">(.*?)</p>', page.text, re.S)
        assert bad is not None, (fields, page.text)
        assert fragment in bad.group(1), (fields, page.text)
        assert 'id="versions"' in page.text  # the model page, not a bare error page
        _assert_inert(page.text)
    caller = api.ctx.auth.authenticate(api.admin_token)
    assert api.ctx.registry.get_model(caller, "default", "churn").aliases == {"production": 1}


def test_viewer_sees_no_promote_form_and_cannot_post(api: Api) -> None:
    seed(api)
    viewer = api.browser("vera", Role.VIEWER)
    page = viewer.get(f"{BASE}/churn")
    assert page.status_code == 200
    assert 'id="promote"' not in page.text
    assert "promote-button" not in page.text
    refused = viewer.post(f"{BASE}/churn/aliases", {"alias": "production", "version": "2"})
    assert refused.status_code == 403
    caller = api.ctx.auth.authenticate(api.admin_token)
    assert api.ctx.registry.get_model(caller, "default", "churn").aliases["production"] == 1


def test_a_post_without_the_csrf_token_is_refused(api: Api) -> None:
    seed(api)
    refused = api.browser().post(
        f"{BASE}/churn/aliases", {"alias": "production", "version": "2"}, csrf=False
    )
    assert refused.status_code == 403
    assert "CSRF" in refused.text


def test_unknown_model_version_and_other_projects_model_give_404_pages(api: Api) -> None:
    seed(api)
    api.ctx.auth.create_project(LOCAL_PRINCIPAL, "other")
    api.ctx.store.registry.create_model("other", "secret")
    browser = api.browser()
    for url in [
        f"{BASE}/nope",
        f"{BASE}/churn/versions/99",
        f"{BASE}/churn/versions/abc",
        f"{BASE}/churn/versions/{2**70}",
        f"{BASE}/secret",
        f"{BASE}/secret/versions/1",
    ]:
        page = browser.get(url)
        assert page.status_code == 404, url
        assert "text/html" in page.headers["content-type"]
        assert "404" in page.text
    missing = browser.post(f"{BASE}/nope/aliases", {"alias": "production", "version": "1"})
    assert missing.status_code == 404
    assert browser.get(f"{BASE}/churn?page=x").status_code == 400
    assert browser.get(f"{BASE}/churn?page=0").status_code == 400


def test_version_page_shows_signature_lineage_and_files(api: Api) -> None:
    seed(api)
    created = api.client.post(
        "/api/v1/projects/default/deployments",
        json={"name": "churn-api", "model": "models:/churn@production"},
        headers=api.as_admin(),
    )
    assert created.status_code == 201, created.text
    page = api.browser().get(f"{BASE}/churn/versions/1")
    assert page.status_code == 200, page.text
    html = page.text
    signature = html.split('<section id="signature">')[1].split("</section>")[0]
    assert "<td>age</td>" in signature
    assert "int64" in signature
    assert "(?, 2)" in signature
    assert "float32" in signature
    assert 'href="/ui/p/default/lineage/model/churn/1"' in html
    assert 'href="/ui/p/default/datasets/credit/versions/1"' in html
    assert 'href="/ui/p/default/deployments/churn-api"' in html
    assert "100%" in html.split('id="serving"')[1]
    assert f'href="/ui/p/default/runs/{RUN_ID}"' in html
    assert "modelyard.yaml" in html
    _assert_inert(html)
    assert SCRIPT_ESCAPED in html  # column name, run name, description
    no_signature = api.browser().get(f"{BASE}/churn/versions/v2")
    assert no_signature.status_code == 200
    assert "has no signature" in no_signature.text


def test_versions_are_paged_newest_first(api: Api) -> None:
    seed(api, versions=55)
    browser = api.browser()
    first = browser.get(f"{BASE}/churn")
    numbers = [int(n) for n in re.findall(r'<tr data-version="(\d+)">', first.text)]
    assert numbers == list(range(55, 5, -1))
    assert "page 1 of 2" in first.text
    second = browser.get(f"{BASE}/churn?page=2")
    assert [int(n) for n in re.findall(r'<tr data-version="(\d+)">', second.text)] == [
        5,
        4,
        3,
        2,
        1,
    ]
    assert browser.get(f"{BASE}/churn?page=9").status_code == 200  # past the end: empty
