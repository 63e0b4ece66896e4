"""The web UI: server-rendered Jinja2 templates, htmx for live parts, uPlot for charts.

The routes live in ``server/routes/ui_*.py`` and use the same services, permissions and
audit log as the API; this package holds the templates, the vendored static files (each
with its own licence) and the rendering helpers.
"""

from __future__ import annotations

from modelyard.ui._render import (
    SECURITY_HEADERS,
    UI_PREFIX,
    error_page,
    render,
    safe_next,
    static_files,
    wants_html,
)

__all__ = [
    "SECURITY_HEADERS",
    "UI_PREFIX",
    "error_page",
    "render",
    "safe_next",
    "static_files",
    "wants_html",
]
