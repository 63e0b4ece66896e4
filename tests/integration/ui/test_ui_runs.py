"""The experiments and runs pages: table (sort, filter, paging, columns), run, compare."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from typing import Any

import pytest
from markupsafe import escape

from modelyard.auth import LOCAL_PRINCIPAL
from modelyard.core.clock import FakeClock
from modelyard.core.entities import ArtifactEntry, Role
from modelyard.core.tracking import LogBatch, Metric, RunStatus
from modelyard.testing.harness import Api, Browser

XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
ROW_RE = re.compile(r'<tr data-run-id="([0-9a-f]+)"')


def _seed(api: Api, clock: FakeClock, rows: Sequence[tuple[str, float, str]]) -> int:
    """Runs (name, auc, depth), one second apart; returns their experiment's id."""
    client = api.rest_client()
    exp = client.create_experiment("default", "exp")
    for i, (name, auc, depth) in enumerate(rows):
        run = client.create_run(exp.id, name=name, tags={"team": "ml"})
        clock.advance(1.0)
        client.log_batch(
            run.id,
            LogBatch(
                metrics=(Metric("auc", auc, 0, 0), Metric("loss", 1.0 - auc, i, 0)),
                params=(("depth", depth), ("lr", "0.1")),
            ),
        )
        client.update_run(run.id, status=RunStatus.FINISHED)
    return exp.id


@pytest.fixture
def exp_id(api: Api, fake_clock: FakeClock) -> int:
    return _seed(api, fake_clock, [("alpha", 0.91, "4"), ("beta", 0.72, "8"), ("gamma", 0.85, "4")])


def _names(page: str) -> list[str]:
    body = page.split('id="runs"', 1)[1]
    return re.findall(r'<a href="/ui/p/default/runs/[0-9a-f]+">([^<]*)</a>', body)


def _charts(page: str) -> list[dict[str, Any]]:
    islands = re.findall(r'<script type="application/json" id="chart-\d+">(.*?)</script>', page)
    return [json.loads(text) for text in islands]


def test_experiments_page_lists_experiments_with_run_counts(api: Api, exp_id: int) -> None:
    page = api.browser().get("/ui/p/default/experiments")
    assert page.status_code == 200
    assert f'href="/ui/p/default/experiments/{exp_id}">exp</a>' in page.text
    row = page.text.split(f'data-experiment-id="{exp_id}"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">3</td>' in row


def test_runs_table_shows_runs_newest_first_with_param_and_metric_columns(
    api: Api, exp_id: int
) -> None:
    page = api.browser().get(f"/ui/p/default/experiments/{exp_id}")
    assert page.status_code == 200
    assert _names(page.text) == ["gamma", "beta", "alpha"]
    assert len(ROW_RE.findall(page.text)) == 3
    for column in ("metrics.auc", "metrics.loss", "params.depth", "params.lr"):
        assert f'data-sort="{column}"' in page.text
    assert '<form class="compare" method="get" action="/ui/p/default/compare">' in page.text
    assert page.text.count('type="checkbox" name="run"') == 3
    assert '<form id="run-filter"' in page.text
    assert 'name="filter"' in page.text
    assert "0.91" in page.text
    assert 'id="next-page"' not in page.text


def test_sorting_by_a_column_reorders_the_rows(api: Api, exp_id: int) -> None:
    b = api.browser()
    url = f"/ui/p/default/experiments/{exp_id}"
    down = b.get(url, params={"order": "metrics.auc DESC"})
    assert _names(down.text) == ["alpha", "gamma", "beta"]
    # The header now links to the other direction.
    assert "order=metrics.auc+ASC" in down.text
    up = b.get(url, params={"order": "metrics.auc ASC"})
    assert _names(up.text) == ["beta", "gamma", "alpha"]
    by_name = b.get(url, params={"order": "attributes.run_name ASC"})
    assert _names(by_name.text) == ["alpha", "beta", "gamma"]


def test_filter_uses_the_search_grammar(api: Api, exp_id: int) -> None:
    b = api.browser()
    url = f"/ui/p/default/experiments/{exp_id}"
    page = b.get(url, params={"filter": "metrics.auc > 0.8 and params.depth = '4'"})
    assert page.status_code == 200
    assert sorted(_names(page.text)) == ["alpha", "gamma"]
    none = b.get(url, params={"filter": "params.depth = '16'"})
    assert _names(none.text) == []
    assert "No runs match this filter" in none.text
    huge = b.get(url, params={"filter": "attributes.start_time > 99999999999999999999999"})
    assert huge.status_code == 200
    assert _names(huge.text) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"filter": "metrics.auc >"}, "expected a value after 'auc' >"),
        ({"filter": "metrics.auc > 1 or params.a = 'b'"}, "OR is not supported"),
        ({"filter": "attributes.colour = 'red'"}, "unknown attribute 'colour'"),
        ({"order": "attributes.nope DESC"}, "unknown attribute 'nope'"),
        ({"page_token": "!!!"}, "invalid page_token"),
        # An offset no database can bind: refused, not a 500.
        ({"page_token": "b2Zmc2V0Ojk5OTk5OTk5OTk5OTk5OTk5OTk5"}, "invalid page_token"),
    ],
)
def test_a_malformed_filter_or_order_is_400_on_the_table_page(
    api: Api, exp_id: int, query: dict[str, str], message: str
) -> None:
    page = api.browser().get(f"/ui/p/default/experiments/{exp_id}", params=query)
    assert page.status_code == 400
    assert 'id="filter-error"' in page.text
    assert str(escape(message)) in page.text
    assert 'id="runs"' in page.text  # the table page, so the filter can be fixed


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"max_results": "abc"}, "max_results must be a whole number"),
        ({"max_results": "0"}, "max_results must be between 1 and 500"),
        ({"max_results": "501"}, "max_results must be between 1 and 500"),
        ({"col": "colour.red"}, "invalid col"),
        ({"filter": "x" * 2001}, "filter is longer than"),
    ],
)
def test_bad_query_parameters_are_a_400_page(
    api: Api, exp_id: int, query: dict[str, str], message: str
) -> None:
    page = api.browser().get(f"/ui/p/default/experiments/{exp_id}", params=query)
    assert page.status_code == 400
    assert message in page.text
    assert page.headers["content-type"].startswith("text/html")


def test_paging_walks_the_runs_with_the_page_token(api: Api, exp_id: int) -> None:
    b = api.browser()
    first = b.get(f"/ui/p/default/experiments/{exp_id}", params={"max_results": "2"})
    assert _names(first.text) == ["gamma", "beta"]
    found = re.search(r'<a id="next-page" href="([^"]+)"', first.text)
    assert found is not None
    second = b.get(html.unescape(found.group(1)))
    assert second.status_code == 200
    assert _names(second.text) == ["alpha"]
    assert 'id="next-page"' not in second.text
    assert 'id="first-page"' in second.text


def test_chosen_columns_replace_the_default_ones(api: Api, exp_id: int) -> None:
    page = api.browser().get(
        f"/ui/p/default/experiments/{exp_id}", params={"col": ["params.depth"]}
    )
    assert 'data-sort="params.depth"' in page.text
    assert 'data-sort="metrics.auc"' not in page.text
    assert '<input type="hidden" name="col" value="params.depth">' in page.text


def test_run_page_shows_params_metrics_tags_charts_and_artifacts(api: Api) -> None:
    client = api.rest_client()
    run = client.create_run(0, name="detailed", tags={"team": "ml"})
    history = tuple(Metric("loss", 1.0 / (s + 1), s, s) for s in range(5000))
    client.log_batch(run.id, LogBatch(metrics=history, params=(("lr", "0.01"),)))
    client.log_batch(run.id, LogBatch(metrics=(Metric("odd", float("nan"), 0, 0),)))
    client.log_run_artifact(run.id, "model/weights.bin", b"x" * 1234)
    page = api.browser().get(f"/ui/p/default/runs/{run.id}")
    assert page.status_code == 200
    assert '<table class="grid kv" id="params">' in page.text
    assert "0.01" in page.text
    assert '<table class="grid" id="metrics">' in page.text
    assert "mlflow.user" in page.text
    assert "team" in page.text
    assert f'href="/ui/p/default/lineage/run/{run.id}"' in page.text
    assert f'href="/api/v1/runs/{run.id}/artifacts/model/weights.bin"' in page.text
    assert page.text.count("data-chart=") == 2
    charts = {c["title"]: c for c in _charts(page.text)}
    loss = charts["loss"]["series"][0]
    assert 1000 <= len(loss["x"]) <= 2001  # thinned in SQL
    assert loss["x"][0] == 0
    assert loss["x"][-1] == 4999
    assert charts["odd"]["series"][0]["y"] == [None]  # NaN: a gap


def test_run_page_links_dataset_inputs_and_model_versions(api: Api) -> None:
    ctx = api.ctx
    run = ctx.tracking.create_run(LOCAL_PRINCIPAL, 0, name="trainer")
    info = ctx.blobs.put_bytes(b"a,b\n1,2\n")
    ctx.store.data.commit_version(
        "default",
        "train",
        [ArtifactEntry("train.csv", info.digest, info.size)],
        manifest_digest="a" * 64,
        user="admin",
    )
    ctx.data.record_input(LOCAL_PRINCIPAL, "default", "train@v1", run.id)
    ctx.store.registry.create_version(
        "default",
        "churn",
        source_run_id=run.id,
        source_uri="upload",
        flavor="sklearn",
        signature_json="{}",
        package_digest="b" * 64,
        files=[ArtifactEntry("modelyard.yaml", "b" * 64, 10)],
        user="admin",
    )
    page = api.browser().get(f"/ui/p/default/runs/{run.id}")
    assert page.status_code == 200
    assert 'href="/ui/p/default/datasets/train/versions/1">train@v1</a>' in page.text
    assert 'href="/ui/p/default/models/churn/versions/1">churn v1</a>' in page.text


def test_compare_shows_runs_side_by_side_with_diff_rows_and_charts(api: Api, exp_id: int) -> None:
    b = api.browser()
    table = b.get(f"/ui/p/default/experiments/{exp_id}")
    ids = ROW_RE.findall(table.text)
    page = b.get("/ui/p/default/compare", params={"run": ids})
    assert page.status_code == 200
    assert '<table class="grid" id="compare">' in page.text
    assert [f'<th data-run-id="{i}">' in page.text for i in ids] == [True] * 3
    rows = re.findall(r'<tr( class="diff")?><th>([^<]+)</th>', page.text)
    differ = {label for flag, label in rows if flag}
    same = {label for flag, label in rows if not flag}
    assert {"auc", "loss", "depth", "name", "started"} <= differ
    assert {"lr", "team", "status", "user", "experiment"} <= same
    titles = {c["title"] for c in _charts(page.text)}
    assert titles == {"auc", "loss"}
    loss = next(c for c in _charts(page.text) if c["title"] == "loss")
    assert len(loss["series"]) == 3  # one series per run


def test_compare_refuses_too_few_too_many_duplicate_and_unknown_runs(api: Api, exp_id: int) -> None:
    b = api.browser()
    ids = ROW_RE.findall(b.get(f"/ui/p/default/experiments/{exp_id}").text)
    one = b.get("/ui/p/default/compare", params={"run": ids[:1]})
    assert one.status_code == 400
    assert "between 2 and 10 runs" in one.text
    eleven = b.get("/ui/p/default/compare", params={"run": [f"{i:032x}" for i in range(11)]})
    assert eleven.status_code == 400
    assert "got 11" in eleven.text
    twice = b.get("/ui/p/default/compare", params={"run": [ids[0], ids[0]]})
    assert twice.status_code == 400
    assert "named twice" in twice.text
    unknown = b.get("/ui/p/default/compare", params={"run": [ids[0], "f" * 32]})
    assert unknown.status_code == 404
    assert "f" * 32 in unknown.text


def _xss_run(api: Api) -> tuple[int, str, str]:
    """A run whose name, param key/value, tag value and metric key carry script payloads;
    keys the API refuses are written straight to the store (as an import could)."""
    client = api.rest_client()
    exp = client.create_experiment("default", XSS[0])
    run = client.create_run(exp.id, name=XSS[0] + XSS[1], tags={"note": XSS[1]})
    client.log_batch(run.id, LogBatch(params=(("p", XSS[0]),)))
    api.ctx.store.tracking.log_batch(
        run.id,
        LogBatch(
            metrics=(Metric(XSS[1], 1.0, 0, 0), Metric(XSS[1], 2.0, 1, 0)),
            params=((XSS[1], "v"),),
            tags=((XSS[0], XSS[0]),),
        ),
    )
    other = client.create_run(exp.id, name="plain")
    client.log_batch(other.id, LogBatch(metrics=(Metric("m", 1.0, 0, 0),)))
    return exp.id, run.id, other.id


def _assert_inert(text: str) -> None:
    for payload in XSS:
        assert payload not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text or "\\u003cscript\\u003e" in text
    assert "<img src=x" not in text
    assert "<script>alert" not in text


def test_script_payloads_are_inert_on_every_page(api: Api) -> None:
    exp_id, run_id, other_id = _xss_run(api)
    b = api.browser()
    columns = {"col": [f"metrics.{XSS[1]}", f"params.{XSS[1]}", "params.p"]}
    pages = [
        b.get("/ui/p/default/experiments"),
        b.get(f"/ui/p/default/experiments/{exp_id}"),
        b.get(f"/ui/p/default/experiments/{exp_id}", params=columns),
        b.get(f"/ui/p/default/experiments/{exp_id}", params={"filter": XSS[1]}),
        b.get(f"/ui/p/default/runs/{run_id}"),
        b.get("/ui/p/default/compare", params={"run": [run_id, other_id]}),
    ]
    assert [p.status_code for p in pages] == [200, 200, 200, 400, 200, 200]
    for page in pages:
        _assert_inert(page.text)
    detail, compare = pages[4].text, pages[5].text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in detail  # tag value, metric key
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img" in compare  # run name
    # Chart JSON escapes < and > so a payload cannot close the <script> island.
    assert "\\u003cimg src=x" in detail


def test_unknown_or_foreign_runs_and_experiments_are_404_pages(api: Api, exp_id: int) -> None:
    api.ctx.auth.create_project(LOCAL_PRINCIPAL, "other")
    foreign_exp = api.ctx.tracking.create_experiment(LOCAL_PRINCIPAL, "other", "theirs")
    foreign = api.ctx.tracking.create_run(LOCAL_PRINCIPAL, foreign_exp.id, name="theirs")
    b = api.browser()
    for url in (
        "/ui/p/default/runs/" + "0" * 32,
        f"/ui/p/default/runs/{foreign.id}",
        f"/ui/p/default/experiments/{foreign_exp.id}",
        "/ui/p/default/experiments/999999",
        "/ui/p/default/experiments/abc",
    ):
        page = b.get(url)
        assert page.status_code == 404, url
        assert page.headers["content-type"].startswith("text/html")
        assert "404" in page.text
        assert "does not exist" in page.text
    mine = ROW_RE.findall(b.get(f"/ui/p/default/experiments/{exp_id}").text)[0]
    mixed = b.get("/ui/p/default/compare", params={"run": [mine, foreign.id]})
    assert mixed.status_code == 404
    # In its own project the foreign run is there.
    assert b.get(f"/ui/p/other/runs/{foreign.id}").status_code == 200


def test_a_viewer_reads_every_page_and_an_outsider_reads_none(api: Api, exp_id: int) -> None:
    viewer: Browser = api.browser("vera", Role.VIEWER)
    ids = ROW_RE.findall(viewer.get(f"/ui/p/default/experiments/{exp_id}").text)
    for url, params in (
        ("/ui/p/default/experiments", {}),
        (f"/ui/p/default/experiments/{exp_id}", {"order": "metrics.auc DESC"}),
        (f"/ui/p/default/runs/{ids[0]}", {}),
        ("/ui/p/default/compare", {"run": ids[:2]}),
    ):
        assert viewer.get(url, params=params).status_code == 200, url
    api.ctx.auth.create_project(LOCAL_PRINCIPAL, "other")
    outsider = api.browser("olga", Role.VIEWER, project="other")
    assert outsider.get(f"/ui/p/default/experiments/{exp_id}").status_code == 403
