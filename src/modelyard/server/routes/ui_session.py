"""/ui: sign in and out, the start page, the project switch and the static files."""

from __future__ import annotations

import hmac
import secrets

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from modelyard.auth import AUTHENTICATED, PUBLIC, Principal
from modelyard.core.errors import NotFound, Unauthenticated
from modelyard.server._context import app_context
from modelyard.server._routing import SESSION_COOKIE, current_principal
from modelyard.server.routes._ui import form_fields, see_other, ui_router
from modelyard.ui import SECURITY_HEADERS, UI_PREFIX, render, safe_next, static_files

api = ui_router()
root = ui_router()
root.prefix = ""
LOGIN_CSRF_COOKIE = "modelyard_login_csrf"


def _cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https"


@root.route("GET", "/", permission=PUBLIC, action="ui.root")
def root_page() -> Response:
    return RedirectResponse(f"{UI_PREFIX}/", status_code=303)


@api.route("GET", "/static/{name}", permission=PUBLIC, action="ui.static")
def static(name: str, request: Request) -> Response:
    found = static_files().get(name)
    if found is None:
        raise NotFound(f"static file {name!r} does not exist")
    etag = f'"{found.digest}"'
    versioned = request.query_params.get("v") == found.digest
    headers = {
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "public, max-age=31536000, immutable" if versioned else "no-cache",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.content_type, headers=headers)


def _login_page(
    request: Request,
    *,
    error: str = "",
    username: str = "",
    next_target: str | None = None,
    status_code: int = 200,
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        status_code,
        login_csrf=token,
        next=safe_next(next_target or request.query_params.get("next")),
        error=error,
        username=username,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path=f"{UI_PREFIX}/login",
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request),
    )
    return response


@api.route("GET", "/login", permission=PUBLIC, action="ui.login_page")
def login_page(request: Request) -> Response:
    return _login_page(request)


@api.route("POST", "/login", permission=PUBLIC, action="ui.login")
async def login(request: Request) -> Response:
    fields = await form_fields(request)
    username = fields.get("username", "").strip()
    next_target = fields.get("next")
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    given = fields.get("csrf_token", "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        return _login_page(
            request,
            error="The sign-in form expired: please try again.",
            username=username,
            next_target=next_target,
            status_code=403,
        )
    request.state.audit_target = username[:128]
    ctx = app_context(request)
    try:
        session = await anyio.to_thread.run_sync(
            ctx.auth.login, username, fields.get("password", "")
        )
    except Unauthenticated as exc:
        return _login_page(
            request,
            error=exc.message,
            username=username,
            next_target=next_target,
            status_code=401,
        )
    response = see_other(request, safe_next(next_target))
    response.set_cookie(
        SESSION_COOKIE,
        session.cookie,
        max_age=int(session.expires_at - ctx.clock.now()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=f"{UI_PREFIX}/login")
    return response


@api.route("POST", "/logout", permission=AUTHENTICATED, action="ui.logout")
def logout(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        app_context(request).auth.logout(cookie)
    response = see_other(request, f"{UI_PREFIX}/login")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@api.route("GET", "/", permission=AUTHENTICATED, action="ui.home")
def home(request: Request, caller: Principal = Depends(current_principal)) -> Response:
    projects = app_context(request).auth.list_projects(caller)
    rows = [
        {
            "name": p.name,
            "description": p.description,
            "created_at": p.created_at,
            "role": role.value if (role := caller.role_in(p.name)) else "",
        }
        for p in projects
    ]
    if len(rows) == 1 and request.query_params.get("stay") is None:
        return RedirectResponse(f"{UI_PREFIX}/p/{rows[0]['name']}/experiments", 303)
    return render(request, "home.html", rows=rows, section="home")


@api.route("GET", "/go", permission=AUTHENTICATED, action="ui.go")
def go(request: Request, caller: Principal = Depends(current_principal)) -> Response:
    project = request.query_params.get("project", "")
    visible = {p.name for p in app_context(request).auth.list_projects(caller)}
    if project not in visible:
        raise NotFound(f"project {project!r} does not exist")
    return RedirectResponse(f"{UI_PREFIX}/p/{project}/experiments", 303, headers=SECURITY_HEADERS)
