"""/ui/p/{project}/datasets: datasets, a dataset's versions, one version (files, schema,
profile histograms, lineage) and the diff of two versions.

The profile is whatever document the client committed (its outer shape is checked, not
every field), so :mod:`modelyard.ui.data_views` turns it into fixed-shape rows before a
template sees it: a strange profile shows less, never a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import Response

from modelyard.auth import PROJECT_VIEWER, Principal
from modelyard.core.datasets import parse_version, validate_dataset_name
from modelyard.core.errors import InvalidInput
from modelyard.data.diff import diff_versions
from modelyard.lineage import Direction
from modelyard.server._context import app_context
from modelyard.server._routing import current_principal
from modelyard.server.routes._ui import ui_router, want_int
from modelyard.ui import render
from modelyard.ui.data_views import diff_view, lineage_links, profile_view

api = ui_router()

PAGE = 50
FILES_PAGE = 200
MAX_PAGE = 100_000


def _ref(name: str, version: int | None) -> str:
    return f"{name}@{'latest' if version is None else f'v{version}'}"


def _version_param(request: Request, key: str) -> int | None:
    """``?a=`` / ``?b=``: ``v3``, ``3`` or ``latest``; missing or malformed is a 400."""
    value = request.query_params.get(key, "").strip()
    if not value:
        raise InvalidInput(f"{key}: choose a version to compare (like v1, 2 or latest)")
    try:
        return parse_version(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{key}: {exc.message}") from None


@api.route("GET", "/p/{project}/datasets", permission=PROJECT_VIEWER, action="ui.datasets.list")
def datasets(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    page = want_int(request.query_params.get("page"), "page", 1, 1, MAX_PAGE)
    found = app_context(request).data.dataset_summaries(
        caller, project, offset=(page - 1) * PAGE, limit=PAGE + 1
    )
    return render(
        request,
        "data/datasets.html",
        section="data",
        rows=found[:PAGE],
        page=page,
        has_next=len(found) > PAGE,
    )


@api.route(
    "GET", "/p/{project}/datasets/{name}", permission=PROJECT_VIEWER, action="ui.dataset.show"
)
def dataset(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    validate_dataset_name(name)
    page = want_int(request.query_params.get("page"), "page", 1, 1, MAX_PAGE)
    data = app_context(request).data
    found = data.version_summaries(caller, project, name, offset=(page - 1) * PAGE, limit=PAGE + 1)
    latest = found[0].version.version if page == 1 and found else None
    if latest is None:
        latest = data.get_version(caller, project, _ref(name, None), file_limit=0).version
    return render(
        request,
        "data/dataset.html",
        section="data",
        name=name,
        rows=found[:PAGE],
        latest=latest,
        page=page,
        has_next=len(found) > PAGE,
    )


@api.route(
    "GET",
    "/p/{project}/datasets/{name}/versions/{version}",
    permission=PROJECT_VIEWER,
    action="ui.dataset.version",
)
def version_page(
    project: str,
    name: str,
    version: str,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> Response:
    validate_dataset_name(name)
    number = parse_version(version)
    file_page = want_int(request.query_params.get("file_page"), "file_page", 1, 1, MAX_PAGE)
    ctx = app_context(request)
    found = ctx.data.get_version(
        caller,
        project,
        _ref(name, number),
        file_offset=(file_page - 1) * FILES_PAGE,
        file_limit=FILES_PAGE,
    )
    ref = _ref(name, found.version)
    up = ctx.lineage.graph(caller, project, "dataset", ref, Direction.UP, 2)
    down = ctx.lineage.graph(caller, project, "dataset", ref, Direction.DOWN, 1)
    return render(
        request,
        "data/version.html",
        section="data",
        v=found,
        tables=profile_view(found.profile),
        lineage=lineage_links(up, down),
        file_page=file_page,
        files_from=(file_page - 1) * FILES_PAGE,
        has_more_files=(file_page - 1) * FILES_PAGE + len(found.files) < found.file_count,
        graph_ident=f"{name}@v{found.version}",
    )


@api.route(
    "GET", "/p/{project}/datasets/{name}/diff", permission=PROJECT_VIEWER, action="ui.dataset.diff"
)
def diff(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> Response:
    validate_dataset_name(name)
    a = _version_param(request, "a")
    b = _version_param(request, "b")
    data = app_context(request).data
    old = data.get_version(caller, project, _ref(name, a))
    new = data.get_version(caller, project, _ref(name, b))
    note = ""
    try:
        changes = diff_versions(old.files, new.files, old.profile, new.profile)
    except (KeyError, TypeError, ValueError, AttributeError):
        # A profile a client committed in another shape: compare the files alone.
        changes = diff_versions(old.files, new.files, {}, {})
        note = "The profiles of these versions could not be compared; files only."
    context: dict[str, Any] = diff_view(changes)
    return render(
        request, "data/diff.html", section="data", name=name, old=old, new=new, note=note, **context
    )
