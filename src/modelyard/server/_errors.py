"""The one place where errors become HTTP statuses and ``{"error_code", "message"}`` bodies.

Invalid input is always a 400, whether the request failed the schema (a body that is not
JSON, a missing, unknown or wrong-typed field, a bad query or path parameter) or a
domain check (:class:`~modelyard.core.errors.InvalidInput`): the MLflow and KServe (OIP)
convention. FastAPI's own 422 is neither answered nor published in the OpenAPI document.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard.core import errors
from modelyard.ui import error_page, wants_html

logger = logging.getLogger("modelyard.server")

STATUS_BY_ERROR: dict[type[errors.ModelyardError], int] = {
    errors.InvalidInput: 400,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.QuotaExceeded: 403,
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.Conflict: 409,
    errors.IntegrityError: 500,
    errors.Unavailable: 503,
}

_CODE_BY_HTTP_STATUS = {
    400: "INVALID_INPUT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


class ErrorBody(BaseModel):
    """The body of every error answer, native and MLflow routes alike."""

    error_code: str = Field(description="What kind of error: INVALID_INPUT, NOT_FOUND …")
    message: str = Field(description="What is wrong, naming the field or the resource.")


#: The error answers every operation declares in the OpenAPI document. Declaring
#: ``4XX`` also keeps FastAPI from adding its default 422 ``HTTPValidationError``,
#: which this server never answers.
ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    400: {
        "model": ErrorBody,
        "description": "Invalid input: a body that is not JSON, a missing, unknown or "
        "wrong-typed field, a bad query or path parameter, or a value the server refuses.",
    },
    "4XX": {
        "model": ErrorBody,
        "description": "Another client error (401, 403, 404, 409 …), in the same body.",
    },
}

# MLflow's clients read MLflow's error codes: (error_code, HTTP status) per error class.
# QuotaExceeded is not 429 (RESOURCE_EXHAUSTED's usual status): the MLflow client would
# retry for minutes something that waiting does not fix.
MLFLOW_PATH_PREFIXES = (
    "/api/2.0/mlflow",
    "/api/2.0/mlflow-artifacts",
    "/api/3.0/mlflow",
    "/api/2.0mlflow",  # SearchDatasets, as MLflow 3.17.2's proto spells its path
)
MLFLOW_CODE_BY_ERROR: dict[type[errors.ModelyardError], tuple[str, int]] = {
    errors.InvalidInput: ("INVALID_PARAMETER_VALUE", 400),
    errors.Unauthenticated: ("UNAUTHENTICATED", 401),
    errors.PermissionDenied: ("PERMISSION_DENIED", 403),
    errors.QuotaExceeded: ("RESOURCE_EXHAUSTED", 403),
    errors.NotFound: ("RESOURCE_DOES_NOT_EXIST", 404),
    errors.AlreadyExists: ("RESOURCE_ALREADY_EXISTS", 400),
    errors.Conflict: ("RESOURCE_CONFLICT", 409),
    errors.IntegrityError: ("INTERNAL_ERROR", 500),
    errors.Unavailable: ("TEMPORARILY_UNAVAILABLE", 503),
}
_MLFLOW_CODE_BY_HTTP_STATUS = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "ENDPOINT_NOT_FOUND",
}


def is_mlflow_request(request: Request) -> bool:
    """Whether the request is for the MLflow-compatible API (which answers MLflow's codes)."""
    path = request.url.path
    return any(path == p or path.startswith(p + "/") for p in MLFLOW_PATH_PREFIXES)


def mlflow_code_for(exc: errors.ModelyardError) -> tuple[str, int]:
    """MLflow's ``(error_code, HTTP status)`` for one of our errors."""
    for cls in type(exc).__mro__:
        if cls in MLFLOW_CODE_BY_ERROR:
            return MLFLOW_CODE_BY_ERROR[cls]
    return "INTERNAL_ERROR", 500


def status_for(exc: errors.ModelyardError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_response(status: int, error_code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"error_code": error_code, "message": message}, status_code=status, headers=headers
    )


def _field_name(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def describe_validation_error(exc: RequestValidationError) -> tuple[bool, str]:
    """(whether the body is not JSON at all, a message naming each bad field).

    Both answer 400; MLflow's routes tell them apart by error code.
    """
    problems: list[str] = []
    for err in exc.errors():
        kind = err.get("type", "")
        if kind == "json_invalid":
            ctx = err.get("ctx", {})
            return True, f"request body is not valid JSON: {ctx.get('error', 'parse error')}"
        loc = tuple(err.get("loc", ()))
        field = _field_name(loc)
        if kind == "extra_forbidden":
            problems.append(f"unknown field {field!r}")
        elif kind == "missing":
            problems.append(f"field {field!r} is required")
        else:
            problems.append(f"field {field!r}: {err.get('msg', 'invalid')}")
    return False, "; ".join(problems) or "invalid request"


async def _modelyard_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ModelyardError)
    if is_mlflow_request(request):
        code, status = mlflow_code_for(exc)
    else:
        code, status = exc.error_code, status_for(exc)
    if status >= 500:
        logger.error("server-side error: %s", exc, exc_info=exc)
    if wants_html(request):
        return error_page(request, status, exc.message)
    return error_response(status, code, exc.message)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    not_json, message = describe_validation_error(exc)
    if wants_html(request):
        return error_page(request, 400, message)
    if is_mlflow_request(request):
        code = "BAD_REQUEST" if not_json else "INVALID_PARAMETER_VALUE"
        return error_response(400, code, message)
    return error_response(400, "INVALID_INPUT", message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if is_mlflow_request(request):
        fallback = "INTERNAL_ERROR" if exc.status_code >= 500 else "BAD_REQUEST"
        code = _MLFLOW_CODE_BY_HTTP_STATUS.get(exc.status_code, fallback)
    else:
        code = _CODE_BY_HTTP_STATUS.get(exc.status_code, "HTTP_ERROR")
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code in (404, 405) and "route" not in request.scope:
        detail = f"{detail}: no route for {request.method} {request.url.path}"
    if wants_html(request):
        return error_page(request, exc.status_code, detail)
    return error_response(exc.status_code, code, detail)


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", exc_info=exc)
    message = "internal server error; see the server log"
    if wants_html(request):
        return error_page(request, 500, message)
    return error_response(500, "INTERNAL_ERROR", message)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.ModelyardError, _modelyard_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
