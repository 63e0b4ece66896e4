"""Keep-alive HTTP/1.1 connections to one replica, one request at a time each.

A connection parses responses with ``httptools.HttpResponseParser`` and hands each
complete response (status, raw headers, whole body) to the request that sent it — its
*listener*. Idle connections wait in their replica's :class:`ReplicaPool` (last in,
first out, so a warm few get reused); a connection whose response asked to close, whose
request timed out, or whose replica left the route table is closed instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Protocol, cast

from httptools import HttpParserCallbackError, HttpParserError, HttpResponseParser

logger = logging.getLogger("modelyard.gateway")

CONNECT_TIMEOUT_S = 10.0
MAX_IDLE_PER_REPLICA = 512


class Listener(Protocol):
    """The request waiting on a connection.

    Exactly one of :meth:`upstream_response` and :meth:`upstream_failed` is called per
    :meth:`UpstreamConnection.send`, unless the listener aborts the connection first.
    """

    head_request: bool

    def upstream_connected(self, conn: UpstreamConnection) -> bool:
        """A fresh connection is ready; return False if no longer wanted (it is pooled)."""
        ...

    def upstream_response(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        """The complete response."""
        ...

    def upstream_failed(self, conn: UpstreamConnection | None, got_bytes: bool) -> None:
        """Connecting failed (``conn`` is None) or the connection broke."""
        ...


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Turn Nagle off: requests and responses are single writes, never worth delaying."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class UpstreamConnection(asyncio.Protocol):
    """One TCP connection to a replica."""

    def __init__(self, pool: ReplicaPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = HttpResponseParser(self)
        self.listener: Listener | None = None
        self.got_bytes = False
        self.closed = False
        self.used = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []

    # ---- asyncio callbacks --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        set_nodelay(transport)

    def data_received(self, data: bytes) -> None:
        if self.listener is None:  # unsolicited bytes: the connection is out of step
            self.abort()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except HttpParserCallbackError:
            logger.exception("gateway error while handling a response")
            self._broken()
        except HttpParserError as exc:
            logger.warning("bad response from %s:%d: %s", self.pool.host, self.pool.port, exc)
            self._broken()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._broken()

    # ---- httptools callbacks --------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        listener = self.listener
        if listener is not None and listener.head_request:
            # httptools cannot be told that a HEAD response has no body: answer now and
            # retire the connection rather than let the parser wait for one.
            self._complete(keep_alive=False)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.listener is None:
            return
        status = self.parser.get_status_code()
        if status < 200:  # 1xx interim response: the real one follows
            self._headers = []
            self._body = []
            return
        self._complete(self.parser.should_keep_alive())

    # ---- used by the proxy ------------------------------------------------------------

    def send(self, listener: Listener, data: bytes) -> None:
        """Write a whole request; ``listener`` hears about the response."""
        self.listener = listener
        self.got_bytes = False
        assert self.transport is not None
        self.transport.write(data)

    def abort(self) -> None:
        """Drop the connection now; its listener hears nothing more."""
        self.listener = None
        if not self.closed:
            self.closed = True
            self.pool.discard(self)
            if self.transport is not None:
                self.transport.abort()

    def close(self) -> None:
        """Close gracefully; its listener (if any) hears nothing more."""
        self.listener = None
        if not self.closed:
            self.closed = True
            self.pool.discard(self)
            if self.transport is not None:
                self.transport.close()

    # ---- internals ----------------------------------------------------------------

    def _complete(self, keep_alive: bool) -> None:
        listener = self.listener
        assert listener is not None
        self.listener = None
        self.used += 1
        status = self.parser.get_status_code()
        headers = self._headers
        chunks = self._body
        self._headers = []
        self._body = []
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if keep_alive:
            self.pool.release(self)
        else:
            self.close()
        listener.upstream_response(status, headers, body)

    def _broken(self) -> None:
        listener = self.listener
        got_bytes = self.got_bytes
        self.abort()
        if listener is not None:
            listener.upstream_failed(self, got_bytes)


class ReplicaPool:
    """Idle keep-alive connections to one replica.

    Args:
        loop: The gateway's event loop.
        host: The replica's address.
        port: The replica's port.
    """

    __slots__ = ("_connecting", "closed", "host", "idle", "loop", "port")

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> None:
        self.loop = loop
        self.host = host
        self.port = port
        self.idle: list[UpstreamConnection] = []
        self.closed = False
        self._connecting: set[asyncio.Task[None]] = set()

    def take(self) -> UpstreamConnection | None:
        """An idle connection, or None."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def connect(self, listener: Listener) -> None:
        """Open a connection for ``listener`` (``upstream_connected`` or ``_failed`` follow)."""
        task = self.loop.create_task(self._connect(listener))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, listener: Listener) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                _, conn = await self.loop.create_connection(
                    lambda: UpstreamConnection(self), self.host, self.port
                )
        except (OSError, TimeoutError):
            listener.upstream_failed(None, False)
            return
        if not listener.upstream_connected(conn):
            self.release(conn)

    def release(self, conn: UpstreamConnection) -> None:
        """Keep ``conn`` for the next request (or close it if the pool is closed or full)."""
        if self.closed or conn.closed or len(self.idle) >= MAX_IDLE_PER_REPLICA:
            conn.close()
        else:
            self.idle.append(conn)

    def discard(self, conn: UpstreamConnection) -> None:
        """Forget a closed connection."""
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def close(self) -> None:
        """Close idle connections now and busy ones when their response is in."""
        self.closed = True
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()
