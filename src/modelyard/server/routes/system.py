"""/health, /ready, /metrics and /openapi.json: public, unauthenticated by design."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from modelyard import __version__
from modelyard.auth import PUBLIC
from modelyard.core.errors import ModelyardError
from modelyard.server._context import app_context
from modelyard.server._routing import ApiRouter
from modelyard.server._schemas import Health

api = ApiRouter(tags=["system"])


@api.route("GET", "/health", permission=PUBLIC, action="system.health")
async def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok", version=__version__)


@api.route("GET", "/ready", permission=PUBLIC, action="system.ready", response_model=Health)
def ready(request: Request) -> Response:
    """Readiness: the metadata store answers and its schema is current."""
    ctx = app_context(request)
    checks: dict[str, str] = {}
    try:
        ctx.store.sql.ping()
        checks["metadata_store"] = "ok" if ctx.store.sql.is_current() else "schema out of date"
    except ModelyardError as exc:
        checks["metadata_store"] = str(exc)
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "unavailable", version=__version__, checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@api.route("GET", "/metrics", permission=PUBLIC, action="system.metrics")
def metrics(request: Request) -> Response:
    """Prometheus exposition of this server's metrics (summed over its workers)."""
    ctx = app_context(request)
    if ctx.metrics_dir is None:
        data = generate_latest(ctx.metrics_registry)
    else:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        from modelyard.monitor.metrics import MonitorCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(ctx.metrics_dir))  # type: ignore[no-untyped-call]
        registry.register(MonitorCollector(ctx.store))
        data = generate_latest(registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)


@api.route("GET", "/openapi.json", permission=PUBLIC, action="system.openapi")
def openapi(request: Request) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema
