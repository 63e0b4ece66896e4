"""The gateway as an object an event loop runs: start on a socket, close gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.gateway._control import ControlApi
from modelyard.gateway._downstream import Context, DownstreamConnection
from modelyard.gateway._options import GatewayOptions
from modelyard.gateway._proxy import Proxy
from modelyard.gateway._routing import Routing
from modelyard.gateway._table import RouteTable
from modelyard.gateway._wakeups import Wakeups
from modelyard.net import listen_socket
from modelyard.telemetry import configure_tracing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from modelyard.gateway._reqlog import RequestLog
    from modelyard.gateway._trace import GatewayTracer

DEFAULT_GRACE_S = 30.0


class Gateway:
    """The data plane of one gateway process, embeddable in any asyncio loop.

    Args:
        options: Secret and body limit (host and port are used only when
            :meth:`start` gets no socket).
        clock: Monotonic seconds (stats, timeouts accounting).
        rng: Draws for weighted and shadow choices (seed it in tests).
        tracer_provider: Where request spans go (tests: one with an in-memory
            exporter); the caller shuts it down. When None, ``options.otel_endpoint``
            (if set) gets a provider of the gateway's own, shut down (flushed) by
            :meth:`close`.
    """

    def __init__(
        self,
        options: GatewayOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.options = options
        self._clock = clock
        self._rng = rng
        self._provider = tracer_provider
        self._own_provider: TracerProvider | None = None
        self._server: asyncio.Server | None = None
        self._ctx: Context | None = None
        self._request_log: RequestLog | None = None

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen on ``sock`` (or bind ``options.host:port``) and serve in this loop."""
        loop = asyncio.get_running_loop()
        if sock is None:
            sock = listen_socket(self.options.host, self.options.port, reuse_port=False)
        tracer = self._tracer()
        routing = Routing(loop)
        wakeups = Wakeups(routing.held, clock=self._clock)
        request_log = None
        if self.options.request_log:
            from modelyard.gateway._reqlog import RequestLog

            request_log = self._request_log = RequestLog(Path(self.options.request_log))
            request_log.start(loop)
        proxy = Proxy(
            loop,
            routing,
            wakeups,
            clock=self._clock,
            rng=self._rng,
            tracer=tracer,
            request_log=request_log,
        )
        control = ControlApi(self.options.secret, proxy, wakeups, clock=self._clock)
        ctx = Context(loop, proxy, control, self.options.max_body_bytes, self._clock, tracer=tracer)
        self._ctx = ctx
        self._server = await loop.create_server(
            lambda: DownstreamConnection(ctx), sock=sock, backlog=2048
        )

    def _tracer(self) -> GatewayTracer | None:
        provider = self._provider
        if provider is None and self.options.otel_endpoint:
            provider = self._own_provider = configure_tracing(
                "modelyard-gateway", endpoint=self.options.otel_endpoint
            )
        if provider is None:
            return None
        from modelyard.gateway._trace import GatewayTracer

        return GatewayTracer(provider)

    @property
    def port(self) -> int:
        """The port the gateway listens on."""
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    def apply_routes(self, table: RouteTable) -> int:
        """Take a route table as ``PUT /-/routes`` would; the version now in force."""
        assert self._ctx is not None, "start() first"
        return self._ctx.proxy.apply(table)

    async def close(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Stop accepting, let in-flight requests finish (up to ``grace_s``), close."""
        server, ctx = self._server, self._ctx
        if server is None or ctx is None:
            return
        self._server = None
        server.close()
        ctx.closing = True
        for conn in list(ctx.connections):
            conn.drain()
        if ctx.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ctx.all_closed.wait(), grace_s)
        for conn in list(ctx.connections):
            if conn.transport is not None:
                conn.transport.abort()
        for deployment in ctx.routing.deployments.values():
            for replica in deployment.replicas.values():
                replica.pool.close()
        ctx.proxy.deadlines.close()
        await server.wait_closed()
        if self._request_log is not None:
            await self._request_log.close()
        provider, self._own_provider = self._own_provider, None
        if provider is not None:  # flush the last spans without stalling the loop
            await asyncio.get_running_loop().run_in_executor(None, provider.shutdown)
