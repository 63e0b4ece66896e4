"""What the web UI's route modules share: their router, redirects, form fields."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from modelyard.auth import Principal
from modelyard.core.entities import Role
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.server._routing import ApiRouter, form_fields
from modelyard.ui import SECURITY_HEADERS, UI_PREFIX

__all__ = ["form_fields", "require_editor", "see_other", "ui_router", "want_int"]


def ui_router() -> ApiRouter:
    """Routes under /ui: HTML answers, left out of the OpenAPI document (not an API)."""
    return ApiRouter(UI_PREFIX, tags=["ui"], include_in_schema=False, response_class=HTMLResponse)


def see_other(request: Request, url: str) -> Response:
    """Go to ``url`` after a form post: a 303 for a plain form, HX-Redirect for htmx."""
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url, **SECURITY_HEADERS})
    return Response(status_code=303, headers={"Location": url, **SECURITY_HEADERS})


def require_editor(principal: Principal, project: str) -> None:
    principal.require(project, Role.EDITOR)


def want_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    """A query parameter as an int within [low, high], or a 400 naming it."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}, got {number}")
    return number


def not_found(what: str) -> NotFound:
    return NotFound(f"{what} does not exist")
