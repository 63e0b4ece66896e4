"""The gateway as an object an event loop runs: start on a socket, close gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import Callable

from modelyard.gateway._control import ControlApi
from modelyard.gateway._downstream import Context, DownstreamConnection
from modelyard.gateway._options import GatewayOptions
from modelyard.gateway._proxy import Proxy
from modelyard.gateway._routing import Routing
from modelyard.gateway._table import RouteTable
from modelyard.gateway._wakeups import Wakeups
from modelyard.net import listen_socket

DEFAULT_GRACE_S = 30.0


class Gateway:
    """The data plane of one gateway process, embeddable in any asyncio loop.

    Args:
        options: Secret and body limit (host and port are used only when
            :meth:`start` gets no socket).
        clock: Monotonic seconds (stats, timeouts accounting).
        rng: Draws for weighted and shadow choices (seed it in tests).
    """

    def __init__(
        self,
        options: GatewayOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.options = options
        self._clock = clock
        self._rng = rng
        self._server: asyncio.Server | None = None
        self._ctx: Context | None = None

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen on ``sock`` (or bind ``options.host:port``) and serve in this loop."""
        loop = asyncio.get_running_loop()
        if sock is None:
            sock = listen_socket(self.options.host, self.options.port, reuse_port=False)
        routing = Routing(loop)
        wakeups = Wakeups(routing.held, clock=self._clock)
        proxy = Proxy(loop, routing, wakeups, clock=self._clock, rng=self._rng)
        control = ControlApi(self.options.secret, proxy, wakeups, clock=self._clock)
        ctx = Context(loop, proxy, control, self.options.max_body_bytes, self._clock)
        self._ctx = ctx
        self._server = await loop.create_server(
            lambda: DownstreamConnection(ctx), sock=sock, backlog=2048
        )

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
