"""One proxied request and one shadow copy: state records and their callbacks, no policy.

An :class:`Exchange` is also the caller's place in its connection's pipeline: the
connection writes responses in request order, each once its ``out`` bytes are set. Both
records are :class:`Outgoing`, what :class:`~modelyard.gateway._send.Sender` needs to send
them upstream. Their upstream and deadline callbacks forward to their handler (the
:class:`~modelyard.gateway._proxy.Proxy`, or for a shadow copy
:class:`~modelyard.gateway._shadow.Shadows`), which owns every decision (retry, hold,
time out, answer, compare); the handlers are seen here only as the small protocols
:class:`Handler` and :class:`ShadowHandler`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import asyncio
    from collections import deque

    from opentelemetry.trace import Span

    from modelyard.gateway._state import LiveDeployment, LiveReplica, LiveRevision
    from modelyard.gateway._upstream import UpstreamConnection

# Exchange states.
NEW, HELD, SENT, DONE = 0, 1, 2, 3


class Slot:
    """A response the caller waits for, in pipeline order."""

    __slots__ = ("close", "out")

    def __init__(self, close: bool = False) -> None:
        self.out: bytes | None = None
        self.close = close


class Caller(Protocol):
    """The caller's connection an exchange is answered on (its pipeline of slots)."""

    @property
    def pending(self) -> deque[Slot]:
        """Slots in request order, the oldest unanswered first."""
        ...

    def respond(self, slot: Slot, data: bytes) -> None:
        """``slot``'s answer is ``data``."""
        ...


class Outgoing(Protocol):
    """A request on its way to a replica, proxied or shadow copy alike.

    The fields :class:`~modelyard.gateway._send.Sender` reads and writes; an
    :class:`~modelyard.gateway._upstream.Listener` of its connection and an
    :class:`~modelyard.gateway._deadlines.Expiring` of its deadline.
    """

    request: bytes
    head_request: bool
    state: int
    #: The deadline wheel's bookkeeping.
    slot: int | None
    revision: LiveRevision
    replica: LiveReplica | None
    upstream: UpstreamConnection | None
    #: The current attempt went out on a pooled keep-alive connection.
    reused: bool
    #: A stale pooled connection was already retried once on a fresh one.
    stale_retried: bool

    def upstream_connected(self, conn: UpstreamConnection) -> bool: ...

    def upstream_response(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None: ...

    def upstream_failed(self, conn: UpstreamConnection | None, got_bytes: bool) -> None: ...

    def expire(self) -> None: ...


def send_when_connected(out: Outgoing, conn: UpstreamConnection) -> bool:
    """``out``'s fresh connection is up: send on it, unless ``out`` is over (pool it)."""
    if out.state != SENT or out.upstream is not None:
        return False
    out.upstream = conn
    conn.send(out, out.request)
    return True


class Handler(Protocol):
    """What decides a proxied request's fate (the proxy)."""

    def on_response(
        self, ex: Exchange, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None: ...

    def on_failure(
        self, ex: Exchange, conn: UpstreamConnection | None, got_bytes: bool
    ) -> None: ...

    def on_timeout(self, ex: Exchange) -> None: ...

    def on_hold_timeout(self, ex: Exchange) -> None: ...


class ShadowHandler(Protocol):
    """What counts and compares shadow copies (the gateway's shadow traffic)."""

    def on_response(self, sh: ShadowExchange, status: int, body: bytes) -> None: ...

    def on_failure(
        self, sh: ShadowExchange, conn: UpstreamConnection | None, got_bytes: bool
    ) -> None: ...

    def on_timeout(self, sh: ShadowExchange) -> None: ...


class Exchange(Slot):
    """A caller's request on its way to a replica (or held, waiting for one)."""

    __slots__ = (
        "arrival_s",
        "attempts",
        "broken_retried",
        "conn",
        "deployment",
        "dispatch_s",
        "handler",
        "head_request",
        "hold_timer",
        "id_line",
        "replica",
        "request",
        "reused",
        "revision",
        "shadows",
        "slot",
        "span",
        "stale_retried",
        "state",
        "tried",
        "upstream",
    )

    def __init__(
        self,
        handler: Handler,
        conn: Caller,
        deployment: LiveDeployment,
        revision: LiveRevision,
        request: bytes,
        head_request: bool,
        arrival_s: float,
        close: bool,
        id_line: bytes,
        span: Span | None,
    ) -> None:
        self.out = None
        self.close = close
        #: ``x-request-id: <id>\r\n``, written into every answer the caller gets.
        self.id_line = id_line
        #: The gateway's SERVER span when tracing is on.
        self.span = span
        self.handler = handler
        self.conn = conn
        self.deployment = deployment
        self.revision = revision
        self.request = request
        self.head_request = head_request
        self.arrival_s = arrival_s
        self.dispatch_s = arrival_s
        self.replica: LiveReplica | None = None
        self.upstream: UpstreamConnection | None = None
        self.slot: int | None = None
        self.hold_timer: asyncio.TimerHandle | None = None
        self.state = NEW
        self.attempts = 0
        self.tried: set[str] | None = None
        self.reused = False
        self.stale_retried = False
        self.broken_retried = False
        self.shadows: list[ShadowExchange] | None = None

    def upstream_connected(self, conn: UpstreamConnection) -> bool:
        return send_when_connected(self, conn)

    def upstream_response(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        self.handler.on_response(self, status, headers, body)

    def upstream_failed(self, conn: UpstreamConnection | None, got_bytes: bool) -> None:
        self.handler.on_failure(self, conn, got_bytes)

    def expire(self) -> None:
        """The request's deadline passed."""
        self.handler.on_timeout(self)

    def hold_expired(self) -> None:
        """The request was held for ``queue_timeout_s``."""
        self.handler.on_hold_timeout(self)


class ShadowExchange:
    """A copy of a request sent to a shadow revision; its answer is only compared."""

    __slots__ = (
        "deployment",
        "handler",
        "head_request",
        "primary",
        "replica",
        "request",
        "result",
        "reused",
        "revision",
        "slot",
        "stale_retried",
        "state",
        "upstream",
    )

    def __init__(
        self,
        handler: ShadowHandler,
        deployment: LiveDeployment,
        revision: LiveRevision,
        request: bytes,
        head_request: bool,
    ) -> None:
        self.handler = handler
        self.deployment = deployment
        self.revision = revision
        self.request = request
        self.head_request = head_request
        self.replica: LiveReplica | None = None
        self.upstream: UpstreamConnection | None = None
        self.slot: int | None = None
        self.state = NEW
        self.reused = False
        self.stale_retried = False
        self.primary: tuple[int, bytes] | None = None
        self.result: tuple[int, bytes] | None = None

    def upstream_connected(self, conn: UpstreamConnection) -> bool:
        return send_when_connected(self, conn)

    def upstream_response(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        self.handler.on_response(self, status, body)

    def upstream_failed(self, conn: UpstreamConnection | None, got_bytes: bool) -> None:
        self.handler.on_failure(self, conn, got_bytes)

    def expire(self) -> None:
        """The shadow's deadline passed."""
        self.handler.on_timeout(self)
