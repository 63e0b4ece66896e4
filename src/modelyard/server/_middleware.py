"""Plain ASGI wrappers: Prometheus request metrics and the audit log of mutating calls."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.server._routing import MUTATING_METHODS

logger = logging.getLogger("modelyard.audit")


class HttpMetrics:
    """Request counts and latency by route template and status, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "modelyard_http_requests",
            "HTTP requests by route template, method and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "modelyard_http_request_duration_seconds",
            "HTTP request latency by route template and method",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    if isinstance(route, BaseRoute):
        return str(getattr(route, "path", "unmatched"))
    return "unmatched"


class ObservabilityMiddleware:
    """Counts and times every request, and audits every routed mutating call."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, audit: Any) -> None:
        self.app = app
        self.metrics = metrics
        self.audit = audit  # callable(state: dict, method, status) -> None, sync

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method = scope["method"]
            route = _route_template(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
            if method in MUTATING_METHODS and "audit_action" in state:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._audit, state, method, status)

    def _audit(self, state: dict[str, Any], method: str, status: int) -> None:
        try:
            self.audit(state, method, status)
        except Exception:  # an audit failure must be seen, but must not eat the response
            logger.exception("could not write an audit record")
