"""One proxied request and one shadow copy: plain state records, no logic.

An :class:`Exchange` is also the caller's place in its connection's pipeline: the
connection writes responses in request order, each once its ``out`` bytes are set. The
upstream callbacks forward to the :class:`~modelyard.gateway._proxy.Proxy` (or, for a
shadow copy, to :class:`~modelyard.gateway._shadow.Shadows`), which owns every decision
(retry, hold, time out, answer, compare).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

    from opentelemetry.trace import Span

    from modelyard.gateway._downstream import DownstreamConnection
    from modelyard.gateway._proxy import Proxy
    from modelyard.gateway._shadow import Shadows
    from modelyard.gateway._state import DeploymentState, ReplicaState, RevisionState
    from modelyard.gateway._upstream import UpstreamConnection

# Exchange states.
NEW, HELD, SENT, DONE = 0, 1, 2, 3


class Slot:
    """A response the caller waits for, in pipeline order."""

    __slots__ = ("close", "out")

    def __init__(self, close: bool = False) -> None:
        self.out: bytes | None = None
        self.close = close


class Exchange(Slot):
    """A caller's request on its way to a replica (or held, waiting for one)."""

    __slots__ = (
        "arrival_s",
        "attempts",
        "broken_retried",
        "conn",
        "deployment",
        "dispatch_s",
        "head_request",
        "hold_timer",
        "id_line",
        "proxy",
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
        proxy: Proxy,
        conn: DownstreamConnection,
        deployment: DeploymentState,
        revision: RevisionState,
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
        self.proxy = proxy
        self.conn = conn
        self.deployment = deployment
        self.revision = revision
        self.request = request
        self.head_request = head_request
        self.arrival_s = arrival_s
        self.dispatch_s = arrival_s
        self.replica: ReplicaState | None = None
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
        return self.proxy.connected(self, conn)

    def upstream_response(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        self.proxy.on_response(self, status, headers, body)

    def upstream_failed(self, conn: UpstreamConnection | None, got_bytes: bool) -> None:
        self.proxy.on_failure(self, conn, got_bytes)

    def expire(self) -> None:
        """The request's deadline passed."""
        self.proxy.on_timeout(self)

    def hold_expired(self) -> None:
        """The request was held for ``queue_timeout_s``."""
        self.proxy.on_hold_timeout(self)


class ShadowExchange:
    """A copy of a request sent to a shadow revision; its answer is only compared."""

    __slots__ = (
        "deployment",
        "head_request",
        "primary",
        "replica",
        "request",
        "result",
        "reused",
        "revision",
        "shadows",
        "slot",
        "stale_retried",
        "state",
        "upstream",
    )

    def __init__(
        self,
        shadows: Shadows,
        deployment: DeploymentState,
        revision: RevisionState,
        replica: ReplicaState,
        request: bytes,
        head_request: bool,
    ) -> None:
        self.shadows = shadows
        self.deployment = deployment
        self.revision = revision
        self.replica = replica
        self.request = request
        self.head_request = head_request
        self.upstream: UpstreamConnection | None = None
        self.slot: int | None = None
        self.state = SENT
        self.reused = False
        self.stale_retried = False
        self.primary: tuple[int, bytes] | None = None
        self.result: tuple[int, bytes] | None = None

    def upstream_connected(self, conn: UpstreamConnection) -> bool:
        return self.shadows.connected(self, conn)

    def upstream_response(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        self.shadows.on_response(self, status, body)

    def upstream_failed(self, conn: UpstreamConnection | None, got_bytes: bool) -> None:
        self.shadows.on_failure(self, conn, got_bytes)

    def expire(self) -> None:
        """The shadow's deadline passed."""
        self.shadows.on_timeout(self)
