"""Server-rendered pages: one Jinja2 environment (autoescaping on), the page context every
template gets, static assets with content-hashed URLs, and HTML error pages.

Every value reaches HTML through Jinja2's autoescaping, and data for charts through
``tojson`` inside ``<script type="application/json">`` (which escapes ``<``, ``>``, ``&``
and quotes), so a run name like ``<script>`` is shown as text, never run. The
Content-Security-Policy allows scripts from this server only, as a second wall.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from modelyard.core.entities import Role

UI_PREFIX = "/ui"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data:; connect-src 'self'; frame-ancestors 'none';"
        " form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".LICENSE": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class StaticFile:
    name: str
    body: bytes
    content_type: str
    digest: str  # first 12 hex digits of the sha256: the cache-busting version


@cache
def static_files() -> dict[str, StaticFile]:
    """Every file under ``ui/static``, read once: the only files the static route serves."""
    found: dict[str, StaticFile] = {}
    for entry in resources.files("modelyard.ui").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in CONTENT_TYPES:
            body = entry.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:12]
            found[entry.name] = StaticFile(entry.name, body, CONTENT_TYPES[suffix], digest)
    return found


def static_url(name: str) -> str:
    return f"{UI_PREFIX}/static/{name}?v={static_files()[name].digest}"


def fmt_time(value: float | int | None, ms: bool = False) -> str:
    """Epoch seconds (or milliseconds with ``ms``) as UTC ``YYYY-MM-DD HH:MM:SS``."""
    if value is None:
        return "-"
    seconds = float(value) / 1000.0 if ms else float(value)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_num(value: Any, digits: int = 4) -> str:
    """A number compactly: integers as is, floats to ``digits`` significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    return f"{value:.{digits}g}"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def url_with(request: Request, **changes: Any) -> str:
    """The current URL with some query parameters changed (None removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("modelyard.ui", "templates"),
        autoescape=select_autoescape(["html", "svg"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["ts"] = fmt_time
    env.filters["num"] = fmt_num
    env.filters["dur"] = fmt_duration
    env.filters["q"] = lambda v: quote(str(v), safe="")
    env.globals["static"] = static_url
    return env


def page_context(request: Request) -> dict[str, Any]:
    """What every page gets: who is looking, the project, CSRF token, the nav."""
    principal = getattr(request.state, "principal", None)
    project = request.path_params.get("project")
    role = principal.role_in(project) if principal is not None and project else None
    projects: list[str] = []
    if principal is not None:
        ctx = request.app.state.modelyard
        projects = [p.name for p in ctx.auth.list_projects(principal)]
    return {
        "request": request,
        "me": principal,
        "project": project,
        "projects": projects,
        "role": role,
        "can_edit": role is not None and role.allows(Role.EDITOR),
        "csrf": getattr(request.state, "csrf_token", None) or "",
        "auth_enabled": request.app.state.modelyard.settings.auth_enabled,
        "url_with": lambda **kw: url_with(request, **kw),
        "section": None,  # the nav entry to highlight; pages pass theirs (error pages none)
        "started": getattr(request.state, "ui_started", time.perf_counter()),
    }


def render_text(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(context)


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page (or an htmx fragment) rendered with the page context plus ``context``."""
    body = render_text(template, {**page_context(request), **context})
    return HTMLResponse(body, status_code, headers={**SECURITY_HEADERS, **(headers or {})})


def wants_html(request: Request) -> bool:
    """A browser asking for a UI page (or htmx asking for a fragment): errors as pages."""
    if not request.url.path.startswith(UI_PREFIX + "/") and request.url.path != "/":
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or request.headers.get("hx-request") == "true"


def error_page(request: Request, status: int, message: str) -> Response:
    """An HTML error page; a 401 sends a browser to the login page instead."""
    if status == 401:
        target = f"{UI_PREFIX}/login?" + urlencode({"next": _next_of(request)})
        if request.headers.get("hx-request") == "true":
            return Response(status_code=401, headers={"HX-Redirect": target})
        return Response(status_code=303, headers={"Location": target, **SECURITY_HEADERS})
    titles = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict"}
    context = {
        **page_context(request),
        "status": status,
        "title": titles.get(status, "Error"),
        "message": message,
    }
    if getattr(request.state, "principal", None) is None:
        context["me"] = None
        context["projects"] = []
    body = render_text("error.html", context)
    return HTMLResponse(body, status, headers=SECURITY_HEADERS)


def _next_of(request: Request) -> str:
    if request.method == "GET" and request.headers.get("hx-request") != "true":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{UI_PREFIX}/"


def safe_next(target: str | None) -> str:
    """A post-login target on this server only (no ``//host`` or scheme: no open redirect)."""
    if not target or not target.startswith(UI_PREFIX + "/") or "\\" in target:
        return f"{UI_PREFIX}/"
    return target


def chart_json(series: dict[str, Any]) -> str:
    """Chart data as JSON text; put it in the page with ``|tojson``-equivalent escaping."""
    return json.dumps(series, separators=(",", ":"), allow_nan=False)
