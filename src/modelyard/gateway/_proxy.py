"""The request lifecycle: pick, send, retry, hold, time out, answer.

Everything here runs in event-loop callbacks, with no task per request: a request is an
:class:`~modelyard.gateway._exchange.Exchange` that moves between states (``HELD``,
``SENT``, ``DONE``) as upstream connections, deadlines and route updates call back.
Request deadlines live on one timing wheel (:mod:`~modelyard.gateway._deadlines`); only
a hold that must end before the request's deadline gets a loop timer of its own.
Requests go upstream through :class:`~modelyard.gateway._send.Sender`, the path shadow
copies (:mod:`~modelyard.gateway._shadow`) take too; held ones wait in the proxy's queue
of their deployment.

Retries: a request whose connection fails before any response byte goes to another
ready replica of its revision not yet tried (at most :data:`MAX_ATTEMPTS` sends); a
pooled keep-alive connection that turns out closed is first retried once on a fresh
connection to the same replica (the replica may just have closed it while idle). A
replica that failed is avoided for :data:`EJECT_S` while others are ready. With no
untried replica left the request is held until a route update brings one.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelyard.gateway._deadlines import Deadlines
from modelyard.gateway._exchange import DONE, HELD, SENT, Caller, Exchange
from modelyard.gateway._http import error_response, proxied_response
from modelyard.gateway._routing import Routing
from modelyard.gateway._send import Failure, Sender
from modelyard.gateway._shadow import Shadows
from modelyard.gateway._state import LiveDeployment, LiveReplica, LiveRevision
from modelyard.gateway._table import RouteTable
from modelyard.gateway._upstream import UpstreamConnection
from modelyard.gateway._wakeups import Wakeups

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from modelyard.gateway._reqlog import RequestLog
    from modelyard.gateway._trace import GatewayTracer

MAX_ATTEMPTS = 5
_ID_PREFIX = len(b"x-request-id: ")  # of an Exchange's id_line
EJECT_S = 1.0
CLIENT_CLOSED = 499  # nginx's code for "the caller went away first"; counted, never sent


class Proxy:
    """Routes requests to replicas and keeps every counter the stats API reports.

    Args:
        loop: The gateway's event loop.
        routing: The live route table.
        wakeups: Where "this revision needs replicas" is signalled.
        clock: Monotonic seconds.
        rng: Draws for weighted and shadow choices.
        tracer: Ends request spans, when tracing is on.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        routing: Routing,
        wakeups: Wakeups,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        tracer: GatewayTracer | None = None,
        request_log: RequestLog | None = None,
    ) -> None:
        self._loop = loop
        self._tracer = tracer
        self._request_log = request_log
        self.routing = routing
        self._wakeups = wakeups
        self._clock = clock
        self._random = (rng or random.Random()).random
        self.deadlines = Deadlines(loop, clock=clock)
        self._sender = Sender(self.deadlines)
        self._shadows = Shadows(wakeups, self._sender, clock=clock, random=self._random)
        #: Requests waiting for a replica, per deployment, oldest first.
        self._held: dict[LiveDeployment, deque[Exchange]] = {}

    # ---- route updates ------------------------------------------------------------

    def apply(self, table: RouteTable) -> int:
        """Take a route table (older versions are ignored) and release held requests.

        Returns:
            The version now in force.
        """
        now = self._clock()
        for deployment in self.routing.apply(table, now):
            self._release(deployment, now)
        return self.routing.version

    def _release(self, dep: LiveDeployment, now: float) -> None:
        held = self._held.pop(dep, None)
        if held is None:
            return
        still = self._held[dep] = deque()
        for ex in held:
            rev = ex.revision
            if not dep.active:
                self._unhold(ex, rev, now)
                rev.stats.rejected += 1
                self._error(ex, 503, f"deployment {dep.name!r} was removed", now)
                continue
            replica = rev.pick(now, ex.tried)
            if replica is None and (not rev.active or rev.weight == 0):
                rev = self._move(ex, dep, rev, now)
                replica = rev.pick(now, ex.tried)
            if replica is None:
                still.append(ex)
                continue
            self._unhold(ex, rev, now)
            self._send(ex, replica, now)
        if not still:
            del self._held[dep]
        for ex in still:
            self._wakeups.signal(dep.name, ex.revision.number, ex.revision.stats.queued)

    def _move(
        self, ex: Exchange, dep: LiveDeployment, old: LiveRevision, now: float
    ) -> LiveRevision:
        """Hand a held request of a revision that lost its traffic to a routed one."""
        new = dep.pick_revision(self._random())
        if new is old:
            return old
        old.stats.add_queued(-1, now)
        old.stats.completions += 1
        old.stats.moved += 1
        new.stats.arrivals += 1
        new.stats.add_queued(1, now)
        ex.revision = new
        ex.tried = None
        return new

    # ---- a new request ------------------------------------------------------------

    def handle(
        self,
        conn: Caller,
        dep: LiveDeployment,
        request: bytes,
        head_request: bool,
        close: bool,
        id_line: bytes = b"",
        span: Span | None = None,
    ) -> Exchange:
        """Route a request that just arrived; the exchange is the caller's pipeline slot.

        ``id_line`` is its ``x-request-id`` header line (already in ``request``), which
        every answer repeats; ``span`` its trace span (ended with the answer).
        """
        now = self._clock()
        rev = dep.pick_revision(self._random())
        ex = Exchange(self, conn, dep, rev, request, head_request, now, close, id_line, span)
        conn.pending.append(ex)
        rev.stats.arrivals += 1
        self.deadlines.add(ex, now + dep.request_timeout_s)
        if dep.shadows:
            self._shadows.fan_out(ex, dep, rev, now)
        replica = rev.pick(now)
        if replica is None:
            self._hold(ex, rev, now)
        else:
            self._send(ex, replica, now)
        return ex

    def _send(self, ex: Exchange, replica: LiveReplica, now: float, *, fresh: bool = False) -> None:
        ex.attempts += 1
        ex.dispatch_s = now
        self._sender.send(ex, replica, now, fresh=fresh)

    # ---- upstream outcomes --------------------------------------------------------

    def on_response(
        self, ex: Exchange, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        """The replica answered: forward the answer."""
        if ex.state != SENT:
            return
        now = self._clock()
        self._sender.answered(ex, now)
        assert ex.replica is not None
        ex.revision.stats.observe_service(now - ex.dispatch_s)
        data = proxied_response(
            status, headers, body, ex.replica.tag, ex.close, ex.head_request, ex.id_line
        )
        self._finish(ex, status, data, body, now)

    def on_failure(self, ex: Exchange, conn: UpstreamConnection | None, got_bytes: bool) -> None:
        """Connecting failed or the connection broke: retry, hold or answer 502."""
        if ex.state != SENT:
            return
        now = self._clock()
        replica = ex.replica
        rev = ex.revision
        assert replica is not None
        failure = self._sender.failed(ex, conn, got_bytes, now)
        if failure is Failure.STALE:
            self._send(ex, replica, now, fresh=True)
            return
        if failure is Failure.BROKEN:
            # Nothing has reached the caller (responses are forwarded whole) and inference
            # is idempotent: one more try on another replica; a second break is a 502.
            if ex.tried is None:
                ex.tried = set()
            ex.tried.add(replica.id)
            retry = None if ex.broken_retried else rev.pick(now, ex.tried)
            if retry is None:
                self._error(ex, 502, f"replica {replica.id} broke off its response", now)
                return
            ex.broken_retried = True
            self._send(ex, retry, now)
            return
        replica.ejected_until_s = now + EJECT_S
        if ex.tried is None:
            ex.tried = set()
        ex.tried.add(replica.id)
        if ex.attempts >= MAX_ATTEMPTS:
            self._error(ex, 502, f"no replica answered in {MAX_ATTEMPTS} attempts", now)
            return
        retry = rev.pick(now, ex.tried)
        if retry is None:
            self._hold(ex, rev, now)
        else:
            self._send(ex, retry, now)

    def on_timeout(self, ex: Exchange) -> None:
        """The request ran out of time (held or sent): 504."""
        now = self._clock()
        rev = ex.revision
        if ex.state == HELD:
            self._unqueue(ex)
            self._unhold(ex, rev, now)
        elif ex.state == SENT:
            self._sender.abort(ex, now)
        else:
            return
        rev.stats.timeouts += 1
        self._error(ex, 504, "the deployment did not answer in time", now)

    def on_hold_timeout(self, ex: Exchange) -> None:
        """The request was held ``queue_timeout_s`` with no replica for it: 503."""
        ex.hold_timer = None
        if ex.state != HELD:
            return
        now = self._clock()
        self._unqueue(ex)
        self._unhold(ex, ex.revision, now)
        ex.revision.stats.rejected += 1
        self._error(ex, 503, "no replica became ready in time", now)

    def cancel(self, ex: Exchange) -> None:
        """The caller went away: stop holding its request (one in flight runs out)."""
        if ex.state != HELD:
            return
        now = self._clock()
        rev = ex.revision
        self._unqueue(ex)
        self._unhold(ex, rev, now)
        ex.state = DONE
        self.deadlines.remove(ex)
        rev.stats.complete(CLIENT_CLOSED, now - ex.arrival_s)
        if self._request_log is not None:
            self._log(ex, CLIENT_CLOSED, now)
        if ex.span is not None:
            self._end_span(ex, ex.span, CLIENT_CLOSED)
        self._shadows.primary_done(ex, CLIENT_CLOSED, b"")

    # ---- holding ------------------------------------------------------------------

    def _hold(self, ex: Exchange, rev: LiveRevision, now: float) -> None:
        dep = ex.deployment
        self._wakeups.signal(dep.name, rev.number, rev.stats.queued + 1)
        if dep.queued >= dep.queue_limit:
            rev.stats.rejected += 1
            self._error(ex, 503, f"deployment {dep.name!r} has {dep.queued} requests waiting", now)
            return
        ex.state = HELD
        held = self._held.get(dep)
        if held is None:
            held = self._held[dep] = deque()
        held.append(ex)
        dep.queued += 1
        rev.stats.add_queued(1, now)
        # The request deadline (504) stays; a hold that must end sooner gets a timer (503).
        if now + dep.queue_timeout_s < ex.arrival_s + dep.request_timeout_s:
            ex.hold_timer = self._loop.call_later(dep.queue_timeout_s, ex.hold_expired)

    def _unqueue(self, ex: Exchange) -> None:
        """Take a held request out of its deployment's queue."""
        held = self._held[ex.deployment]
        held.remove(ex)
        if not held:
            del self._held[ex.deployment]

    def _unhold(self, ex: Exchange, rev: LiveRevision, now: float) -> None:
        ex.deployment.queued -= 1
        rev.stats.add_queued(-1, now)
        if ex.hold_timer is not None:
            ex.hold_timer.cancel()
            ex.hold_timer = None

    # ---- answering ----------------------------------------------------------------

    def _error(self, ex: Exchange, status: int, message: str, now: float) -> None:
        ex.state = DONE
        self.deadlines.remove(ex)
        tag = ex.replica.tag if ex.replica is not None else ex.revision.tag
        data = error_response(
            status, message, close=ex.close, head=ex.head_request, extra=tag + ex.id_line
        )
        self._finish(ex, status, data, b"", now)

    def _finish(self, ex: Exchange, status: int, data: bytes, body: bytes, now: float) -> None:
        ex.revision.stats.complete(status, now - ex.arrival_s)
        ex.conn.respond(ex, data)
        if self._request_log is not None:
            self._log(ex, status, now)
        if ex.span is not None:
            self._end_span(ex, ex.span, status)
        if ex.shadows is not None:
            self._shadows.primary_done(ex, status, body)

    def _log(self, ex: Exchange, status: int, now: float) -> None:
        assert self._request_log is not None
        replica = ex.replica.id if ex.replica is not None else ""
        self._request_log.record(
            ex.id_line[_ID_PREFIX:-2].decode("latin-1"),
            ex.deployment.name,
            ex.revision.number,
            replica,
            status,
            now - ex.arrival_s,
            ex.attempts,
        )

    def _end_span(self, ex: Exchange, span: Span, status: int) -> None:
        ex.span = None
        assert self._tracer is not None
        self._tracer.finish(ex, span, status)
