"""The ASGI server: /api/v1 (native), /health, /ready, /metrics, /openapi.json."""

from __future__ import annotations

from modelyard.server._app import bootstrap_platform, build_context, create_app
from modelyard.server._context import AppContext
from modelyard.server._run import ServerOptions, check_bind, client_uri, serve

__all__ = [
    "AppContext",
    "ServerOptions",
    "bootstrap_platform",
    "build_context",
    "check_bind",
    "client_uri",
    "create_app",
    "serve",
]
