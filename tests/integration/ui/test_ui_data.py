"""The dataset pages: list, versions, one version's profile and lineage, diffs; escaping,
404s for unknown names and versions, 400s for bad parameters, read-only for viewers."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from markupsafe import escape

from modelyard.auth import LOCAL_PRINCIPAL
from modelyard.core.entities import Role
from modelyard.data.add import add_dataset
from modelyard.testing.harness import Api

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
BASE = "/ui/p/default/datasets"


@dataclass(frozen=True)
class Seeded:
    run_id: str
    reader_id: str


def _table(path: Path, rows: int, offset: float = 0.0) -> None:
    pd.DataFrame(
        {
            "amount": [float(i) + offset for i in range(rows)],
            "city": ["paris" if i % 3 else "rome" for i in range(rows)],
        }
    ).to_csv(path, index=False)


def seed(api: Api, tmp_path: Path) -> Seeded:
    """credit@v1 and @v2 (a CSV, profiled, plus a text file; messages carry payloads),
    a run that wrote v2 and another that read it, a model version from the reader."""
    caller = api.ctx.auth.authenticate(api.admin_token)
    writer = api.ctx.tracking.create_run(caller, 0, name="prepare")
    reader = api.ctx.tracking.create_run(caller, 0, name=SCRIPT)
    src = tmp_path / "credit"
    src.mkdir()
    _table(src / "table.csv", 100)
    (src / "notes.txt").write_text("hello")
    with api.rest_client() as client:
        add_dataset(client, "default", src, "credit", message=f"first {SCRIPT}")
        _table(src / "table.csv", 150, offset=10)
        (src / "extra.txt").write_text("new")
        add_dataset(client, "default", src, "credit", message=IMG, run_id=writer.id)
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


def _inert(text: str) -> None:
    """No payload reaches the page as markup; the escaped forms do."""
    assert SCRIPT not in text
    assert "<img src=x" not in text


def test_the_datasets_list_shows_each_dataset_with_its_latest_version(
    api: Api, tmp_path: Path
) -> None:
    seed(api, tmp_path)
    page = api.browser().get(BASE)
    assert page.status_code == 200, page.text
    assert 'id="datasets"' in page.text
    row = re.search(r'<tr data-dataset="credit">(.*?)</tr>', page.text, re.S)
    assert row is not None
    assert "v2" in row.group(1)
    assert ">150<" in row.group(1)  # rows of the latest version's table
    assert f"{BASE}/credit/versions/v2" in row.group(1)
    _inert(page.text)
    assert str(escape(IMG)) in page.text


def test_the_dataset_page_lists_versions_newest_first_with_diff_links(
    api: Api, tmp_path: Path
) -> None:
    seeded = seed(api, tmp_path)
    page = api.browser().get(f"{BASE}/credit")
    assert page.status_code == 200, page.text
    assert 'id="versions"' in page.text
    assert re.findall(r'data-version="(\d+)"', page.text) == ["2", "1"]
    assert f"{BASE}/credit/diff?a=v1&amp;b=v2" in page.text
    assert f"/ui/p/default/runs/{seeded.run_id}" in page.text
    assert 'name="a"' in page.text
    assert 'name="b"' in page.text
    _inert(page.text)
    assert str(escape(f"first {SCRIPT}")) in page.text


def test_a_version_page_shows_files_profile_histograms_and_lineage(
    api: Api, tmp_path: Path
) -> None:
    seeded = seed(api, tmp_path)
    page = api.browser().get(f"{BASE}/credit/versions/v2")
    assert page.status_code == 200, page.text
    text = page.text
    assert 'id="profile"' in text
    profile = text[text.index('id="profile"') :]
    assert 'data-path="table.csv"' in profile
    assert 'data-column="amount"' in profile
    assert 'data-column="city"' in profile
    heights = re.findall(r'<span style="height:([\d.]+)%"', profile)
    assert len(heights) == 20  # the stored histogram's bins
    assert max(float(h) for h in heights) == 100.0
    assert ">paris<" in profile  # top values of the categorical column
    for path in ("table.csv", "notes.txt", "extra.txt"):
        assert path in text
    lineage = text[text.index('id="lineage"') : text.index('id="profile"')]
    assert f"/ui/p/default/runs/{seeded.run_id}" in lineage  # written by
    assert f"/ui/p/default/runs/{seeded.reader_id}" in lineage  # used by
    assert "/ui/p/default/lineage/dataset/credit%40v2" in text
    _inert(text)
    assert str(escape(SCRIPT)) in lineage  # the reader run's name, as text


def test_latest_and_bare_numbers_name_versions_too(api: Api, tmp_path: Path) -> None:
    seed(api, tmp_path)
    browser = api.browser()
    for version in ("latest", "2"):
        page = browser.get(f"{BASE}/credit/versions/{version}")
        assert page.status_code == 200
        assert "credit@v2" in page.text


def test_the_diff_page_shows_files_and_column_changes(api: Api, tmp_path: Path) -> None:
    seed(api, tmp_path)
    page = api.browser().get(f"{BASE}/credit/diff?a=v1&b=latest")
    assert page.status_code == 200, page.text
    text = page.text
    assert 'id="diff"' in text
    assert re.search(r'data-count="added">1<', text)
    assert re.search(r'data-count="changed">1<', text)
    assert re.search(r'data-count="unchanged">1<', text)
    assert 'data-change="added"' in text
    assert "extra.txt" in text
    table = text[text.index('class="table-diff"') :]
    assert "100 → 150" in table
    assert 'data-column="amount"' in table
    assert "mean" in table


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        (f"{BASE}/nope", 404, "does not exist"),
        (f"{BASE}/credit/versions/v9", 404, "no version v9"),
        (f"{BASE}/nope/versions/v1", 404, "does not exist"),
        (f"{BASE}/credit/diff?a=v1&b=v9", 404, "no version v9"),
        (f"{BASE}/nope/diff?a=v1&b=v2", 404, "does not exist"),
        (f"{BASE}/credit/versions/seven", 400, "invalid dataset version"),
        (f"{BASE}/credit/diff?b=v2", 400, "a: choose a version"),
        (f"{BASE}/credit/diff?a=v1", 400, "b: choose a version"),
        (f"{BASE}/credit/diff?a=x&b=v2", 400, "a: invalid dataset version"),
        (f"{BASE}?page=zero", 400, "page must be a whole number"),
        (f"{BASE}?page=0", 400, "page must be between"),
        (f"{BASE}/credit?page=-1", 400, "page must be between"),
        (f"{BASE}/credit/versions/v1?file_page=x", 400, "file_page"),
        (f"{BASE}/{IMG}", 400, "invalid dataset name"),
        (f"{BASE}/{IMG}/versions/{IMG}", 400, "invalid dataset name"),
        ("/ui/p/nowhere/datasets", 404, "does not exist"),
    ],
)
def test_unknown_names_are_404_pages_and_bad_parameters_400_pages(
    api: Api, tmp_path: Path, url: str, status: int, message: str
) -> None:
    seed(api, tmp_path)
    page = api.browser().get(url)
    assert page.status_code == status, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert str(escape(message)) in page.text
    _inert(page.text)


def test_a_page_past_the_end_is_empty_not_an_error(api: Api, tmp_path: Path) -> None:
    seed(api, tmp_path)
    browser = api.browser()
    assert "No datasets on this page" in browser.get(f"{BASE}?page=5").text
    assert "No versions on this page" in browser.get(f"{BASE}/credit?page=5").text


def test_a_viewer_reads_every_page_and_sees_no_buttons(api: Api, tmp_path: Path) -> None:
    seed(api, tmp_path)
    viewer = api.browser("vera", Role.VIEWER)
    for url in (
        BASE,
        f"{BASE}/credit",
        f"{BASE}/credit/versions/v1",
        f"{BASE}/credit/diff?a=1&b=2",
    ):
        page = viewer.get(url)
        assert page.status_code == 200, (url, page.text)
        assert (
            'method="post"' not in page.text.replace(' action="/ui/logout"', "").split("<main>")[1]
        )
    api.ctx.auth.create_project(LOCAL_PRINCIPAL, "other")
    stranger = api.browser("sam", Role.VIEWER, project="other")
    refused = stranger.get(f"{BASE}/credit")
    assert refused.status_code == 403
    assert "credit@v" not in refused.text


def test_a_profile_in_an_odd_shape_shows_less_instead_of_failing(api: Api) -> None:
    # The commit checks a profile's outer shape only; pages must cope with the rest.
    odd = {
        "format_version": 1,
        "tables": {
            "t.csv": {
                "num_rows": "many",
                "schema": [1, {"name": SCRIPT}],
                "columns": {
                    "a": {"kind": "numeric", "histogram": {"edges": [0, 1], "counts": ["x"]}},
                    "b": {"kind": "categorical", "top_k": [{"value": IMG, "count": 3}, 5]},
                    "c": 7,
                },
            },
            "u.csv": [],
        },
    }
    files = [{"path": "t.csv", "digest": _put(api, b"a,b\n1,2\n"), "size": 8}]
    for profile in (odd, {"format_version": 1, "tables": {"t.csv": {"schema": "x"}}}):
        body = {"files": files, "message": "odd", "profile": profile}
        done = api.client.post(
            "/api/v1/projects/default/datasets/odd/versions", json=body, headers=api.as_admin()
        )
        assert done.status_code in (200, 201), done.text
        files = [{"path": "t.csv", "digest": _put(api, b"a,b\n3,4\n"), "size": 8}]
    browser = api.browser()
    for url in (f"{BASE}/odd/versions/v1", f"{BASE}/odd/versions/v2", f"{BASE}/odd/diff?a=1&b=2"):
        page = browser.get(url)
        assert page.status_code == 200, (url, page.text)
        _inert(page.text)


def _put(api: Api, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    url = f"/api/v1/projects/default/blobs/{digest}"
    assert api.client.put(url, content=content, headers=api.as_admin()).status_code == 201
    return digest


def test_a_dataset_of_another_project_is_not_found_here(api: Api, tmp_path: Path) -> None:
    api.ctx.auth.create_project(LOCAL_PRINCIPAL, "other")
    (tmp_path / "f.txt").write_text("x")
    with api.rest_client() as client:
        add_dataset(client, "other", tmp_path / "f.txt", "elsewhere")
    browser = api.browser()
    assert browser.get("/ui/p/other/datasets/elsewhere").status_code == 200
    assert browser.get(f"{BASE}/elsewhere").status_code == 404
    assert browser.get(f"{BASE}/elsewhere/versions/v1").status_code == 404
