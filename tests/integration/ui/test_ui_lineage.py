"""The lineage pages: the start page, and the graph around a node drawn as an SVG (data ->
run -> model in columns, the focus marked, every node linked and listed in a table);
404 for unknown nodes and other projects' nodes, 400 for bad parameters, escaping."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from markupsafe import escape

from modelyard.auth import LOCAL_PRINCIPAL
from modelyard.core.entities import Role
from modelyard.data.add import add_dataset
from modelyard.testing.harness import Api

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
BASE = "/ui/p/default/lineage"
NODE_RE = re.compile(
    r'<g class="node kind-(\w+)( focus)?[^"]*" data-kind="(\w+)" data-id="([^"]*)"'
    r' data-key="([^"]*)">\s*<a href="([^"]*)">\s*<title>[^<]*</title>\s*'
    r'<rect x="([\d.]+)" y="([\d.]+)"'
)


def _nodes(text: str) -> dict[str, tuple[bool, str, float, float]]:
    """data-id -> (focus, link, x, y) of every node drawn in the SVG."""
    return {
        m.group(4): (bool(m.group(2)), m.group(6), float(m.group(7)), float(m.group(8)))
        for m in NODE_RE.finditer(text)
    }


@dataclass(frozen=True)
class Seeded:
    run_id: str
    reader_id: str


@pytest.fixture
def seeded(api: Api, tmp_path: Path) -> Seeded:
    """credit@v1 and @v2, written by run "prepare" and read by a run named like a script;
    model churn/1 registered from the reader."""
    caller = api.ctx.auth.authenticate(api.admin_token)
    writer = api.ctx.tracking.create_run(caller, 0, name="prepare")
    reader = api.ctx.tracking.create_run(caller, 0, name=SCRIPT)
    (tmp_path / "table.csv").write_text("a,b\n1,x\n")
    with api.rest_client() as client:
        add_dataset(client, "default", tmp_path / "table.csv", "credit", message=IMG)
        (tmp_path / "table.csv").write_text("a,b\n1,x\n2,y\n")
        add_dataset(client, "default", tmp_path / "table.csv", "credit", run_id=writer.id)
        client.record_dataset_input("default", "credit@v2", reader.id)
    api.ctx.store.registry.create_version(
        "default",
        "churn",
        source_run_id=reader.id,
        source_uri="",
        flavor="sklearn",
        signature_json="",
        package_digest="c" * 64,
        files=[],
        user="admin",
    )
    return Seeded(writer.id, reader.id)


def test_the_graph_of_a_model_version_runs_data_to_run_to_model(api: Api, seeded: Seeded) -> None:
    page = api.browser().get(f"{BASE}/model/churn/1")
    assert page.status_code == 200, page.text
    text = page.text
    assert '<svg class="lineage"' in text
    nodes = _nodes(text)
    reader, writer = seeded.reader_id, seeded.run_id
    assert set(nodes) == {"churn/1", reader, "credit@v2", writer}
    assert nodes["churn/1"][0]  # the focus
    assert not any(focus for key, (focus, *_) in nodes.items() if key != "churn/1")
    # Columns left to right: the writing run, the data, the reading run, the model.
    xs = [nodes[k][2] for k in (writer, "credit@v2", reader, "churn/1")]
    assert xs == sorted(xs)
    assert len(set(xs)) == 4
    assert nodes["credit@v2"][1] == "/ui/p/default/datasets/credit/versions/v2"
    assert nodes[reader][1] == f"/ui/p/default/runs/{reader}"
    assert nodes["churn/1"][1] == "/ui/p/default/models/churn/versions/1"
    assert len(re.findall(r'<path class="edge ', text)) == 3
    assert re.search(r'd="M [\d.]+ [\d.]+ C ', text)
    # The table lists the same nodes, with links to re-centre the graph.
    table = text[text.index('id="lineage-nodes"') :]
    assert f"{BASE}/dataset/credit%40v2" in table
    assert f"{BASE}/run/{writer}" in table
    assert SCRIPT not in text
    assert str(escape(SCRIPT)) in text


def test_the_graph_around_a_dataset_or_run_and_its_depth(api: Api, seeded: Seeded) -> None:
    browser = api.browser()
    around = _nodes(browser.get(f"{BASE}/dataset/credit@v2").text)
    assert around["credit@v2"][0]
    assert {"churn/1", seeded.reader_id, seeded.run_id} <= set(around)
    one_hop = _nodes(browser.get(f"{BASE}/dataset/credit@latest?depth=1").text)
    assert set(one_hop) == {"credit@v2", seeded.reader_id, seeded.run_id}
    up = _nodes(browser.get(f"{BASE}/run/{seeded.reader_id}?direction=up").text)
    assert set(up) == {seeded.reader_id, "credit@v2", seeded.run_id}
    run = browser.get(f"{BASE}/run/{seeded.run_id}")
    assert _nodes(run.text)[seeded.run_id][0]


def test_the_start_page_links_recent_data_runs_and_models(api: Api, seeded: Seeded) -> None:
    page = api.browser().get(BASE)
    assert page.status_code == 200, page.text
    assert f"{BASE}/dataset/credit%40v2" in page.text
    assert f"{BASE}/run/{seeded.reader_id}" in page.text
    assert f"{BASE}/model/churn/1" in page.text
    assert SCRIPT not in page.text
    assert str(escape(SCRIPT)) in page.text
    assert "<img src=x" not in page.text


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/run/0123456789abcdef", 404, "does not exist"),
        ("/dataset/credit@v9", 404, "no version v9"),
        ("/dataset/nope@v1", 404, "does not exist"),
        ("/model/churn/7", 404, "no version 7"),
        ("/model/nope/1", 404, "no version 1"),
        ("/deployment/nope", 404, "no deployment named"),
        ("/deployment/a/b", 404, "no deployment named"),
        ("/model/churn", 400, "expected &lt;name&gt;/&lt;version&gt;"),
        ("/dataset/credit@vx", 400, "invalid dataset version"),
        ("/planet/x", 400, "invalid lineage kind"),
        ("/dataset/credit@v2?depth=9", 400, "depth must be between 1 and 6"),
        ("/dataset/credit@v2?depth=0", 400, "depth must be between 1 and 6"),
        ("/dataset/credit@v2?depth=two", 400, "depth must be a whole number"),
        ("/dataset/credit@v2?direction=sideways", 400, "direction must be up, down or both"),
        (f"/run/{IMG}", 404, "does not exist"),
    ],
)
def test_unknown_nodes_are_404_pages_and_bad_parameters_400_pages(
    api: Api, seeded: Seeded, path: str, status: int, message: str
) -> None:
    page = api.browser().get(BASE + path)
    assert page.status_code == status, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert message in page.text
    assert "<img src=x" not in page.text


def test_a_node_of_another_project_is_not_found_here(api: Api, seeded: Seeded) -> None:
    api.ctx.auth.create_project(LOCAL_PRINCIPAL, "other")
    experiment = api.ctx.tracking.create_experiment(LOCAL_PRINCIPAL, "other", "elsewhere")
    run = api.ctx.tracking.create_run(LOCAL_PRINCIPAL, experiment.id, name="far")
    browser = api.browser()
    assert browser.get(f"/ui/p/other/lineage/run/{run.id}").status_code == 200
    page = browser.get(f"{BASE}/run/{run.id}")
    assert page.status_code == 404
    assert browser.get(f"/ui/p/other/lineage/run/{seeded.reader_id}").status_code == 404


def test_a_viewer_reads_the_graph_and_a_stranger_is_refused(api: Api, seeded: Seeded) -> None:
    viewer = api.browser("vera", Role.VIEWER)
    for url in (BASE, f"{BASE}/model/churn/1", f"{BASE}/run/{seeded.reader_id}"):
        page = viewer.get(url)
        assert page.status_code == 200, (url, page.text)
        assert "hx-post" not in page.text
    api.ctx.auth.create_project(LOCAL_PRINCIPAL, "other")
    stranger = api.browser("sam", Role.VIEWER, project="other")
    refused = stranger.get(f"{BASE}/model/churn/1")
    assert refused.status_code == 403
    assert "credit@v2" not in refused.text
