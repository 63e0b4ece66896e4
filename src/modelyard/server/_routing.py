"""Routes that declare their permission; the check and the audit tag live here.

Use ``ApiRouter.route`` instead of FastAPI's decorators: it refuses a route without a
permission, checks it before the handler runs, tags the request for the audit log, and
publishes the permission in the OpenAPI document as ``x-modelyard-permission``, with
the error answers every route shares (``server._errors.ERROR_RESPONSES``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio.to_thread
from fastapi import Depends, FastAPI, Request

from modelyard.auth import LOCAL_PRINCIPAL, Permission, Principal, Scope
from modelyard.core.errors import InvalidInput, PermissionDenied, Unauthenticated
from modelyard.server._context import AppContext, app_context
from modelyard.server._errors import ERROR_RESPONSES
from modelyard.server._resources import RESOLVERS, request_fields

F = TypeVar("F", bound=Callable[..., Any])

PERMISSION_KEY = "x-modelyard-permission"
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SESSION_COOKIE = "modelyard_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
FORM_TYPE = "application/x-www-form-urlencoded"


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
        csrf = request.headers.get(CSRF_HEADER)
        if csrf is None and request.method in MUTATING_METHODS:
            csrf = (await form_fields(request)).get(CSRF_FIELD)
        await anyio.to_thread.run_sync(_check, ctx, request, permission, fields, csrf)

    return authorize


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form body (the web UI's forms); {} for other bodies."""
    if not request.headers.get("content-type", "").startswith(FORM_TYPE):
        return {}
    try:
        text = (await request.body()).decode()
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=1000))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"malformed form body: {exc}") from None


def _authenticate(
    ctx: AppContext, request: Request, csrf: str | None
) -> tuple[Principal, str | None]:
    """The caller and, for a browser session, its CSRF token.

    A bearer token wins over a session cookie (browsers never send one on their own, so
    it needs no CSRF token); a cookie-authenticated mutating call must carry the
    session's CSRF token in the ``X-CSRF-Token`` header or the form's ``csrf_token``.
    """
    if not ctx.settings.auth_enabled:
        return LOCAL_PRINCIPAL, None
    token = bearer_token(request)
    if token is not None:
        return ctx.auth.authenticate(token), None
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthenticated("missing API token: send 'Authorization: Bearer <token>'")
    session = ctx.auth.browser_session(cookie)
    if request.method in MUTATING_METHODS and not (
        csrf and hmac.compare_digest(csrf.encode(), session.csrf_token.encode())
    ):
        raise PermissionDenied("missing or wrong CSRF token: reload the page and try again")
    return session.principal, session.csrf_token


def _check(
    ctx: AppContext,
    request: Request,
    permission: Permission,
    fields: dict[str, Any],
    csrf: str | None,
) -> None:
    state = request.state
    principal, state.csrf_token = _authenticate(ctx, request, csrf)
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

    def __init__(
        self,
        prefix: str = "",
        tags: list[str] | None = None,
        also_at: tuple[str, ...] = (),
        **defaults: Any,
    ) -> None:
        """``also_at``: further prefixes every route answers at too (compatibility
        aliases, left out of the OpenAPI document)."""
        self.prefix = prefix
        self.also_at = also_at
        self.tags = list(tags or [])
        self.defaults = defaults  # add_api_route keyword arguments of every route here
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
            merged = {**self.defaults, **kwargs}
            spec = _RouteSpec(method, path, fn, permission, action, status_code, merged)
            self._specs.append(spec)
            return fn

        return decorate

    def install(self, app: FastAPI) -> None:
        for prefix in (self.prefix, *self.also_at):
            self._install_at(app, prefix, alias=prefix != self.prefix)

    def _install_at(self, app: FastAPI, prefix: str, *, alias: bool) -> None:
        for spec in self._specs:
            kwargs = dict(spec.kwargs)
            if alias:
                kwargs["include_in_schema"] = False
            responses = {**ERROR_RESPONSES, **kwargs.pop("responses", {})}
            app.add_api_route(
                prefix + spec.path,
                spec.endpoint,
                methods=[spec.method],
                status_code=spec.status_code,
                dependencies=[Depends(_authorizer(spec.permission, spec.action))],
                openapi_extra={PERMISSION_KEY: str(spec.permission)},
                name=spec.action,
                tags=list(self.tags),
                responses=responses,
                **kwargs,
            )
