"""Step 9 of the quickstart: the same story in the web UI, each page fetched once."""

from __future__ import annotations

import time
from urllib.parse import quote

from rich.console import Console
from rich.table import Table

from modelyard.client import ModelyardClient
from modelyard.quickstart._deploy import DEPLOYMENT, MODEL_NAME
from modelyard.quickstart._result import StepError, UiPage


def ui_pages(project: str, run_id: str) -> list[tuple[str, str]]:
    """(what, path) of the pages that show what the walk-through made."""
    p = quote(project, safe="")
    return [
        ("runs", f"/ui/p/{p}/experiments"),
        ("best run", f"/ui/p/{p}/runs/{run_id}"),
        ("model", f"/ui/p/{p}/models/{MODEL_NAME}"),
        ("deployment", f"/ui/p/{p}/deployments/{DEPLOYMENT}"),
        ("monitoring", f"/ui/p/{p}/monitoring/{DEPLOYMENT}"),
        ("cost", f"/ui/p/{p}/cost"),
        ("lineage", f"/ui/p/{p}/lineage/deployment/{DEPLOYMENT}"),
    ]


def visit_ui(
    client: ModelyardClient, project: str, run_id: str, console: Console
) -> tuple[UiPage, ...]:
    """GET each page as a browser would (HTML), with the API token instead of a password."""
    tracking_uri = client.tracking_uri
    visited: list[UiPage] = []
    for what, path in ui_pages(project, run_id):
        started = time.perf_counter()
        response = client.get_page(path)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        if response.status_code != 200:
            raise StepError(f"{path} answered {response.status_code}")
        visited.append(UiPage(what, path, elapsed_ms, len(response.content)))
    table = Table(title="the web UI (server-rendered pages, fetched once each)")
    table.add_column("page")
    table.add_column("url")
    table.add_column("time", justify="right")
    for page in visited:
        table.add_row(page.what, f"{tracking_uri}{page.path}", f"{page.ms:.0f} ms")
    console.print(table)
    console.print(
        f"open {tracking_uri}/ui/ in a browser; sign in after setting a password with "
        "`modelyard user passwd admin` (programs keep using API tokens)",
        highlight=False,
    )
    return tuple(visited)
