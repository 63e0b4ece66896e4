"""Routes that declare their permission; the check and the audit tag live here.

Use ``ApiRouter.route`` instead of FastAPI's decorators: it refuses a route without a
permission, checks it before the handler runs, tags the request for the audit log, and
publishes the permission in the OpenAPI document as ``x-modelyard-permission``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Depends, FastAPI, Request

from modelyard.auth import LOCAL_PRINCIPAL, Permission, Principal, Scope
from modelyard.core.errors import Unauthenticated
from modelyard.server._context import AppContext, app_context
from modelyard.server._resources import RESOLVERS, request_fields

F = TypeVar("F", bound=Callable[..., Any])

PERMISSION_KEY = "x-modelyard-permission"
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _authorizer(
    permission: Permission, action: str
) -> Callable[[Request], Coroutine[Any, Any, None]]:
    if permission.scope is Scope.RESOURCE and permission.resource not in RESOLVERS:
        raise ValueError(f"no resolver for resource {permission.resource!r}")

    async def authorize(request: Request) -> None:
        state = request.state
        state.audit_action = action
        state.audit_project = request.path_params.get("project")
        if permission.scope is Scope.PUBLIC:
            return
        ctx = app_context(request)
        fields = await request_fields(request) if permission.scope is Scope.RESOURCE else {}
        await anyio.to_thread.run_sync(_check, ctx, request, permission, fields)

    return authorize


def _check(
    ctx: AppContext, request: Request, permission: Permission, fields: dict[str, Any]
) -> None:
    state = request.state
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
    elif permission.scope is Scope.RESOURCE and permission.role is not None:
        projects = RESOLVERS[str(permission.resource)](ctx, fields)
        for project in sorted(projects):
            principal.require(project, permission.role)
        if len(projects) == 1:
            state.audit_project = next(iter(projects))


def current_principal(request: Request) -> Principal:
    """The caller, as established by the route's permission check."""
    principal: Principal = request.state.principal
    return principal


def set_audit_target(request: Request, target: str) -> None:
    request.state.audit_target = target


@dataclass(frozen=True)
class _RouteSpec:
    method: str
    path: str
    endpoint: Callable[..., Any]
    permission: Permission
    action: str
    status_code: int
    kwargs: dict[str, Any]


class ApiRouter:
    """Routes of one resource, each carrying a permission and an audit action name.

    Routes are added straight onto the app by ``install`` (no nested routers), so the
    app's route table lists every route with its full path.
    """

    def __init__(self, prefix: str = "", tags: list[str] | None = None) -> None:
        self.prefix = prefix
        self.tags = list(tags or [])
        self._specs: list[_RouteSpec] = []

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
        if permission.scope is Scope.PROJECT and "{project}" not in self.prefix + path:
            raise ValueError(f"{method} {path}: a project-scoped route needs a {{project}} param")

        def decorate(fn: F) -> F:
            spec = _RouteSpec(method, path, fn, permission, action, status_code, kwargs)
            self._specs.append(spec)
            return fn

        return decorate

    def install(self, app: FastAPI) -> None:
        for spec in self._specs:
            app.add_api_route(
                self.prefix + spec.path,
                spec.endpoint,
                methods=[spec.method],
                status_code=spec.status_code,
                dependencies=[Depends(_authorizer(spec.permission, spec.action))],
                openapi_extra={PERMISSION_KEY: str(spec.permission)},
                name=spec.action,
                tags=list(self.tags),
                **spec.kwargs,
            )
