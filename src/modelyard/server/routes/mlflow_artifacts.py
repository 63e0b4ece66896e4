"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/artifacts``) over the blob store.

Paths are those of the ``mlflow-artifacts:/`` URIs the server hands out:
``<experiment_id>/<run_id>/artifacts/<relative path>`` (a run's files, in the run's
artifact namespace, so the native SDK sees them too),
``<experiment_id>/models/<model_id>/artifacts/<relative path>`` (an MLflow 3 logged
model's files, namespace ``logged-model:<model_id>``) and
``registry/<project>/<model>/<version>/<relative path>`` (a registered version's MLflow
model directory, read-only).
Uploads and downloads share the native artifact routes' streaming code.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from modelyard.artifacts import validate_logical_path
from modelyard.auth import on_resource
from modelyard.core.entities import ArtifactEntry, Role
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.core.models import version_namespace
from modelyard.core.tracking import run_artifact_namespace
from modelyard.server._context import app_context
from modelyard.server._resources import parse_mlflow_artifact_path
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server.routes._mlflow_http import answer
from modelyard.server.routes._mlflow_schemas import JsonObject
from modelyard.server.routes.artifacts import download_from_namespace, upload_to_namespace
from modelyard.store.logged_model_repo import logged_model_namespace

MLFLOW_MODEL_DIR = "mlflow_model"  # where an mlflow-flavor package keeps the model directory

# The MLflow 3.17.2 reference lists this service under its prefix twice; MLflow's client
# uses it once. Both answer.
api = ApiRouter(
    "/api/2.0/mlflow-artifacts",
    tags=["mlflow"],
    also_at=("/api/2.0/mlflow-artifacts/mlflow-artifacts",),
)

ARTIFACT_VIEWER = on_resource("artifact_path", Role.VIEWER)
ARTIFACT_EDITOR = on_resource("artifact_path", Role.EDITOR)


def _locate(request: Request, path: str, *, file: bool, write: bool = False) -> tuple[str, str]:
    """(namespace, path in it) of ``path``, after checking that its owner is there.

    Raises:
        NotFound: the run, logged model or version does not exist (where the path says).
        InvalidInput: the path is malformed, or ``write`` into a registered version.
    """
    where = parse_mlflow_artifact_path(path)
    relative = where.relative
    if file or relative:
        relative = validate_logical_path(relative)
    if where.kind == "registry":
        if write:
            raise InvalidInput("the files of a registered model version cannot be changed")
        namespace, root = _version_files(request, where.owner, where.model, where.version)
        return namespace, root + relative
    ctx = app_context(request)
    if where.kind == "logged_model":
        model = ctx.store.logged_models.get(where.owner)
        if str(model.experiment_id) != where.experiment_id:
            raise NotFound(f"logged model {model.id} is not in experiment {where.experiment_id}")
        return logged_model_namespace(model.id), relative
    run = ctx.tracking.get_run(current_principal(request), where.owner)
    if str(run.experiment_id) != where.experiment_id:
        raise NotFound(f"run {run.id} is not in experiment {where.experiment_id}")
    return run_artifact_namespace(run.id), relative


def _version_files(request: Request, project: str, name: str, version: str) -> tuple[str, str]:
    """A registered version's namespace and the folder served as its root.

    For a version of flavor ``mlflow`` the root is the MLflow model directory
    (``mlflow_model/``), which is what MLflow's client downloads; otherwise the package.
    """
    if not version.isdigit():
        raise InvalidInput(f"invalid version {version!r}: must be a positive integer")
    ctx = app_context(request)
    found = ctx.registry.get_version(current_principal(request), project, name, int(version))
    namespace = version_namespace(ctx.store.registry.model_id(project, name), found.version)
    if any(f.path == f"{MLFLOW_MODEL_DIR}/MLmodel" for f in found.files):
        return namespace, f"{MLFLOW_MODEL_DIR}/"
    return namespace, ""


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
    namespace, relative = await anyio.to_thread.run_sync(
        lambda: _locate(request, path, file=True, write=True)
    )
    await upload_to_namespace(request, namespace, relative)
    return answer()


@api.route("GET", "/artifacts", permission=ARTIFACT_VIEWER, action="mlflow.artifact.list")
def list_artifacts(request: Request, path: str = Query(min_length=1)) -> JSONResponse:
    """Answer ``{files: [{path, is_dir, file_size}]}`` for one folder level."""
    namespace, relative = _locate(request, path, file=False)
    entries = app_context(request).store.artifacts.list(namespace, relative)
    return answer({"files": list_one_level(entries, relative.rstrip("/"))})


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
    namespace, relative = _locate(request, path, file=True, write=True)
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
