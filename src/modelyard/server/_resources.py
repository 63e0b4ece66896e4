"""Which project owns the resource a request names, for ``Scope.RESOURCE`` permissions.

Ids are looked for where the native and the MLflow APIs put them: path parameters,
then query parameters, then the JSON body (``run_id``/``run_uuid``, ``experiment_id``,
``experiment_ids``, ``model_id``, an MLflow artifact ``path``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from modelyard.core.errors import InvalidInput
from modelyard.server._context import AppContext

Resolver = Callable[[AppContext, dict[str, Any]], set[str]]


async def request_fields(request: Request) -> dict[str, Any]:
    """Query params, then top-level JSON body fields, then path params (later ones win)."""
    fields: dict[str, Any] = dict(request.query_params)
    if request.headers.get("content-type", "").startswith("application/json"):
        raw = await request.body()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None  # the handler's own validation reports the malformed body
            if isinstance(body, dict):
                fields.update(body)
    fields.update(request.path_params)
    return fields


def _experiment_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"invalid experiment_id {value!r}: must be an integer") from None


def _run_projects(ctx: AppContext, fields: dict[str, Any]) -> set[str]:
    run_id = fields.get("run_id") or fields.get("run_uuid")
    if not isinstance(run_id, str) or not run_id:
        raise InvalidInput("the request must name a run: run_id is missing")
    return {ctx.store.tracking.project_of_run(run_id)}


def _experiment_projects(ctx: AppContext, fields: dict[str, Any]) -> set[str]:
    ids = fields.get("experiment_ids")
    if isinstance(ids, str):
        ids = [ids]
    if ids is None:
        ids = [fields.get("experiment_id")]
    if not isinstance(ids, list) or not ids or any(i in (None, "") for i in ids):
        raise InvalidInput("the request must name an experiment: experiment_id is missing")
    return {ctx.store.tracking.project_of_experiment(_experiment_id(i)) for i in ids}


@dataclass(frozen=True)
class MlflowArtifactPath:
    """Where an MLflow artifact path points.

    ``kind`` is ``run`` (``<experiment_id>/<run_id>/artifacts/<relative>``),
    ``logged_model`` (``<experiment_id>/models/<model_id>/artifacts/<relative>``) or
    ``registry`` (``registry/<project>/<model>/<version>/<relative>``, a registered
    version's files, read-only). ``owner`` is the run id, the logged model id or the
    project; ``experiment_id`` is ``""`` for the registry; ``relative`` is ``""`` for
    the root.
    """

    kind: str
    owner: str
    experiment_id: str
    relative: str
    model: str = ""
    version: str = ""


REGISTRY_ARTIFACT_ROOT = "registry"


def parse_mlflow_artifact_path(path: str) -> MlflowArtifactPath:
    """Parse the path after ``/api/2.0/mlflow-artifacts/artifacts/``.

    Args:
        path: An artifact path, as the ``mlflow-artifacts:/`` URIs the server hands out.

    Returns:
        Its parts.

    Raises:
        InvalidInput: the path has none of the three shapes.
    """
    parts = path.strip("/").split("/")
    if parts[0] == REGISTRY_ARTIFACT_ROOT and len(parts) >= 4 and all(parts[1:4]):
        project, model, version = parts[1:4]
        return MlflowArtifactPath(
            "registry", project, "", "/".join(parts[4:]), model=model, version=version
        )
    if len(parts) >= 4 and parts[0].isdigit() and parts[1] == "models" and parts[3] == "artifacts":
        return MlflowArtifactPath("logged_model", parts[2], parts[0], "/".join(parts[4:]))
    if len(parts) >= 3 and parts[0].isdigit() and parts[1] and parts[2] == "artifacts":
        return MlflowArtifactPath("run", parts[1], parts[0], "/".join(parts[3:]))
    raise InvalidInput(
        f"invalid artifact path {path!r}: expected <experiment_id>/<run_id>/artifacts/..., "
        "<experiment_id>/models/<model_id>/artifacts/... or "
        "registry/<project>/<model>/<version>/..."
    )


def _artifact_path_projects(ctx: AppContext, fields: dict[str, Any]) -> set[str]:
    path = fields.get("path")
    if not isinstance(path, str) or not path:
        raise InvalidInput("the request must name an artifact path: path is missing")
    where = parse_mlflow_artifact_path(path)
    if where.kind == "registry":
        return {where.owner}
    if where.kind == "logged_model":
        return {ctx.store.logged_models.project_of(where.owner)}
    return {ctx.store.tracking.project_of_run(where.owner)}


def _logged_model_projects(ctx: AppContext, fields: dict[str, Any]) -> set[str]:
    model_id = fields.get("model_id")
    if not isinstance(model_id, str) or not model_id:
        raise InvalidInput("the request must name a logged model: model_id is missing")
    return {ctx.store.logged_models.project_of(model_id)}


RESOLVERS: dict[str, Resolver] = {
    "run": _run_projects,
    "experiment": _experiment_projects,
    "artifact_path": _artifact_path_projects,
    "logged_model": _logged_model_projects,
}
