"""What every MLflow route shares: body parsing, the caller's project, JSON answers.

Bodies are parsed by a dependency that runs after the route's permission check, so a
caller without the role learns nothing from validation messages. Python's ``json``
accepts the bare ``NaN``/``Infinity`` tokens some clients send.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from modelyard.core.entities import DEFAULT_PROJECT, Role
from modelyard.core.errors import InvalidInput
from modelyard.server._routing import current_principal
from modelyard.server.routes._mlflow_schemas import JsonObject

M = TypeVar("M", bound=BaseModel)

MLFLOW_PREFIX = "/api/2.0/mlflow"


def json_body(model: type[M]) -> Callable[[Request], Coroutine[Any, Any, M]]:
    """A dependency parsing the JSON body into ``model``; an empty body is ``{}``.

    Args:
        model: The pydantic model of the request.

    Returns:
        An async dependency returning the parsed model.
    """

    async def parse(request: Request) -> M:
        raw = await request.body()
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise InvalidInput(f"request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidInput("request body must be a JSON object")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None

    return parse


def home_project(role: Role) -> Callable[[Request], str]:
    """A dependency: the project MLflow objects go to, after checking ``role`` there.

    MLflow has no projects; a token scoped to a project works in that project, any
    other token in ``default``.

    Args:
        role: The role the caller needs in that project.

    Returns:
        A dependency returning the project name.
    """

    def resolve(request: Request) -> str:
        caller = current_principal(request)
        project = caller.scope_project or DEFAULT_PROJECT
        caller.require(project, role)
        return project

    return resolve


def answer(content: JsonObject | None = None) -> JSONResponse:
    """A 200 answer with an MLflow response message (``{}`` for the empty ones)."""
    return JSONResponse(content or {})
