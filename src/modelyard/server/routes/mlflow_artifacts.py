"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/artifacts``) over the blob store.

Paths are ``<experiment_id>/<run_id>/artifacts/<relative path>``, as in the
``mlflow-artifacts:/`` URIs the tracking routes hand out. Files land in the run's
artifact namespace (``run_artifact_namespace``), so the native SDK sees them too.
Uploads and downloads share the native artifact routes' streaming code.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from modelyard.artifacts import validate_logical_path
from modelyard.auth import on_resource
from modelyard.core.entities import ArtifactEntry, Role
from modelyard.core.errors import NotFound
from modelyard.core.tracking import run_artifact_namespace
from modelyard.server._context import app_context
from modelyard.server._resources import split_run_artifact_path
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server.routes._mlflow_http import answer
from modelyard.server.routes._mlflow_schemas import JsonObject
from modelyard.server.routes.artifacts import download_from_namespace, upload_to_namespace

api = ApiRouter("/api/2.0/mlflow-artifacts", tags=["mlflow"])

ARTIFACT_VIEWER = on_resource("artifact_path", Role.VIEWER)
ARTIFACT_EDITOR = on_resource("artifact_path", Role.EDITOR)


def _locate(request: Request, path: str, *, file: bool) -> tuple[str, str]:
    """(namespace, relative path) of ``path``, after checking that the run is there."""
    experiment_id, run_id, relative = split_run_artifact_path(path)
    run = app_context(request).tracking.get_run(current_principal(request), run_id)
    if str(run.experiment_id) != experiment_id:
        raise NotFound(f"run {run_id} is not in experiment {experiment_id}")
    if file or relative:
        relative = validate_logical_path(relative)
    return run_artifact_namespace(run_id), relative


def list_one_level(entries: list[ArtifactEntry], directory: str) -> list[JsonObject]:
    """MLflow's listing of ``directory``: its files and subfolders, by base name.

    Args:
        entries: Index entries under ``directory`` (any depth).
        directory: The relative folder listed; ``""`` for the run's root.

    Returns:
        ``{path, is_dir, file_size?}`` objects sorted by path; empty when ``directory``
        is a file, as MLflow answers.
    """
    prefix = f"{directory}/" if directory else ""
    files: dict[str, JsonObject] = {}
    for entry in entries:
        if not entry.path.startswith(prefix):
            continue  # the file "a" when listing "a", or a sibling such as "ab/x"
        name, _, rest = entry.path[len(prefix) :].partition("/")
        if rest:
            files[name] = {"path": name, "is_dir": True}
        else:
            files.setdefault(name, {"path": name, "is_dir": False, "file_size": entry.size})
    return [files[name] for name in sorted(files)]


@api.route(
    "PUT",
    "/artifacts/{path:path}",
    permission=ARTIFACT_EDITOR,
    action="mlflow.artifact.put",
)
async def put_artifact(path: str, request: Request) -> JSONResponse:
    """Store the raw request body at ``path``, replacing an earlier file there."""
    namespace, relative = await anyio.to_thread.run_sync(lambda: _locate(request, path, file=True))
    await upload_to_namespace(request, namespace, relative)
    return answer()


@api.route("GET", "/artifacts", permission=ARTIFACT_VIEWER, action="mlflow.artifact.list")
def list_artifacts(request: Request, path: str = Query(min_length=1)) -> JSONResponse:
    """Answer ``{files: [{path, is_dir, file_size}]}`` for one folder level of a run."""
    namespace, relative = _locate(request, path, file=False)
    entries = app_context(request).store.artifacts.list(namespace, relative)
    return answer({"files": list_one_level(entries, relative)})


@api.route(
    "GET",
    "/artifacts/{path:path}",
    permission=ARTIFACT_VIEWER,
    action="mlflow.artifact.get",
    response_class=StreamingResponse,
)
def get_artifact(path: str, request: Request) -> StreamingResponse:
    """Stream the file's bytes."""
    namespace, relative = _locate(request, path, file=True)
    return download_from_namespace(app_context(request), namespace, relative)


@api.route(
    "DELETE",
    "/artifacts/{path:path}",
    permission=ARTIFACT_EDITOR,
    action="mlflow.artifact.delete",
)
def delete_artifact(path: str, request: Request) -> JSONResponse:
    """Delete a file, or every file under a folder (as MLflow does)."""
    ctx = app_context(request)
    namespace, relative = _locate(request, path, file=True)
    set_audit_target(request, f"{namespace}/{relative}")
    doomed = [
        e.path
        for e in ctx.store.artifacts.list(namespace, relative)
        if e.path == relative or e.path.startswith(f"{relative}/")
    ]
    if not doomed:
        raise NotFound(f"artifact {relative!r} does not exist")
    for logical in doomed:
        ctx.store.artifacts.delete(namespace, logical)
    return answer()
