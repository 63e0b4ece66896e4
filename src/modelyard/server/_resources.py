"""Which project owns the resource a request names, for ``Scope.RESOURCE`` permissions.

Ids are looked for where the native and the MLflow APIs put them: path parameters,
then query parameters, then the JSON body (``run_id``/``run_uuid``, ``experiment_id``,
``experiment_ids``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
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


def split_run_artifact_path(path: str) -> tuple[str, str, str]:
    """Split an MLflow artifact path ``<experiment_id>/<run_id>/artifacts[/<relative>]``.

    Args:
        path: The path after ``/api/2.0/mlflow-artifacts/artifacts/``.

    Returns:
        ``(experiment_id, run_id, relative)``; ``relative`` is ``""`` for the run's root.

    Raises:
        InvalidInput: the path does not name a run's artifacts.
    """
    parts = path.strip("/").split("/", 3)
    if len(parts) < 3 or not parts[0].isdigit() or not parts[1] or parts[2] != "artifacts":
        raise InvalidInput(
            f"invalid artifact path {path!r}: expected <experiment_id>/<run_id>/artifacts/..."
        )
    return parts[0], parts[1], parts[3] if len(parts) == 4 else ""


def _artifact_path_projects(ctx: AppContext, fields: dict[str, Any]) -> set[str]:
    path = fields.get("path")
    if not isinstance(path, str) or not path:
        raise InvalidInput("the request must name an artifact path: path is missing")
    _experiment, run_id, _relative = split_run_artifact_path(path)
    return {ctx.store.tracking.project_of_run(run_id)}


RESOLVERS: dict[str, Resolver] = {
    "run": _run_projects,
    "experiment": _experiment_projects,
    "artifact_path": _artifact_path_projects,
}
