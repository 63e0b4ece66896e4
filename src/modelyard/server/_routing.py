"""Routes that declare their permission; the check and the audit tag live here.

Use ``ApiRouter.route`` instead of FastAPI's decorators: it refuses a route without a
permission, checks it before the handler runs, tags the request for the audit log, and
publishes the permission in the OpenAPI document as ``x-modelyard-permission``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request

from modelyard.auth import LOCAL_PRINCIPAL, Permission, Principal, Scope
from modelyard.core.errors import Unauthenticated
from modelyard.server._context import app_context

F = TypeVar("F", bound=Callable[..., Any])

PERMISSION_KEY = "x-modelyard-permission"
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _authorizer(permission: Permission, action: str) -> Callable[[Request], None]:
    def authorize(request: Request) -> None:
        state = request.state
        state.audit_action = action
        state.audit_project = request.path_params.get("project")
        if permission.scope is Scope.PUBLIC:
            return
        ctx = app_context(request)
        if not ctx.settings.auth_enabled:
            principal = LOCAL_PRINCIPAL
        else:
            token = bearer_token(request)
            if token is None:
                raise Unauthenticated("missing API token: send 'Authorization: Bearer <token>'")
            principal = ctx.auth.authenticate(token)
        state.principal = principal
        if permission.scope is Scope.PLATFORM_ADMIN:
            principal.require_platform_admin()
        elif permission.scope is Scope.PROJECT and permission.role is not None:
            principal.require(request.path_params["project"], permission.role)

    return authorize


def current_principal(request: Request) -> Principal:
    """The caller, as established by the route's permission check."""
    principal: Principal = request.state.principal
    return principal


def set_audit_target(request: Request, target: str) -> None:
    request.state.audit_target = target


class ApiRouter:
    """An APIRouter whose every route carries a permission and an audit action name."""

    def __init__(self, prefix: str = "", tags: list[str] | None = None) -> None:
        self.router = APIRouter(prefix=prefix, tags=list(tags or []))

    def route(
        self,
        method: str,
        path: str,
        *,
        permission: Permission,
        action: str,
        status_code: int = 200,
        **kwargs: Any,
    ) -> Callable[[F], F]:
        if permission.scope is Scope.PROJECT and "{project}" not in path:
            raise ValueError(f"{method} {path}: a project-scoped route needs a {{project}} param")

        def decorate(fn: F) -> F:
            self.router.add_api_route(
                path,
                fn,
                methods=[method],
                status_code=status_code,
                dependencies=[Depends(_authorizer(permission, action))],
                openapi_extra={PERMISSION_KEY: str(permission)},
                name=action,
                **kwargs,
            )
            return fn

        return decorate
