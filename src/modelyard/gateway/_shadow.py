"""Shadow traffic: copies of requests sent to shadow revisions, answers compared.

A copy goes to one ready replica of each shadow revision that draws the request (with
probability ``shadow_percent``), never delaying the caller: beyond the deployment's
``shadow_queue_limit`` copies outstanding, or with no ready replica, the copy is counted
``dropped`` (the latter also raises a wake signal). The shadow's answer is compared with
what the caller got (:func:`~modelyard.gateway._compare.responses_agree`) and discarded.
Copies count toward the shadow revision's ``in_flight`` and ``load_area``, never toward
its ``arrivals`` or ``completions``. A copy carries the caller's ``x-request-id`` (and,
with tracing on, the same ``traceparent``) plus ``x-modelyard-shadow: 1``, so the
replica can tell it from primary traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from modelyard.gateway._compare import responses_agree
from modelyard.gateway._deadlines import Deadlines
from modelyard.gateway._exchange import DONE, SENT, Exchange, ShadowExchange
from modelyard.gateway._http import SHADOW_HEADER
from modelyard.gateway._state import DeploymentState, ReplicaState, RevisionState
from modelyard.gateway._upstream import UpstreamConnection
from modelyard.gateway._wakeups import Wakeups


class Shadows:
    """Sends shadow copies and keeps their counters.

    Args:
        wakeups: Where a shadow revision without replicas is signalled.
        deadlines: Where shadow copies time out (after the deployment's
            ``request_timeout_s``, like the caller's request).
        clock: Monotonic seconds.
        random: Uniform draws in [0, 1).
    """

    def __init__(
        self,
        wakeups: Wakeups,
        deadlines: Deadlines,
        *,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float],
    ) -> None:
        self._wakeups = wakeups
        self._deadlines = deadlines
        self._clock = clock
        self._random = random

    def fan_out(
        self, ex: Exchange, dep: DeploymentState, primary: RevisionState, now: float
    ) -> None:
        """Copy ``ex`` to each shadow revision of ``dep`` that draws it (not ``primary``)."""
        request: bytes | None = None
        for rev in dep.shadows:
            if rev is primary or self._random() * 100.0 >= rev.shadow_percent:
                continue
            stats = rev.stats
            if dep.shadow_outstanding >= dep.shadow_queue_limit:
                stats.shadow_dropped += 1
                continue
            replica = rev.pick(now)
            if replica is None:
                stats.shadow_dropped += 1
                self._wakeups.signal(dep.name, rev.number, stats.queued)
                continue
            if request is None:
                request = shadow_request(ex.request)
            sh = ShadowExchange(self, dep, rev, replica, request, ex.head_request)
            if ex.shadows is None:
                ex.shadows = []
            ex.shadows.append(sh)
            stats.shadow_sent += 1
            dep.shadow_outstanding += 1
            self._deadlines.add(sh, now + dep.request_timeout_s)
            self._send(sh, replica, now, fresh=False)

    def _send(self, sh: ShadowExchange, replica: ReplicaState, now: float, *, fresh: bool) -> None:
        replica.in_flight += 1
        replica.requests += 1
        sh.revision.stats.add_in_flight(1, now)
        conn = None if fresh else replica.pool.take()
        if conn is None:
            sh.upstream = None
            sh.reused = False
            replica.pool.connect(sh)
        else:
            sh.upstream = conn
            sh.reused = True
            conn.send(sh, sh.request)

    def connected(self, sh: ShadowExchange, conn: UpstreamConnection) -> bool:
        """A fresh connection for a shadow is up: send, unless the shadow is over."""
        if sh.state != SENT or sh.upstream is not None:
            return False
        sh.upstream = conn
        conn.send(sh, sh.request)
        return True

    def on_response(self, sh: ShadowExchange, status: int, body: bytes) -> None:
        """The shadow replica answered: compare once the primary answer is in too."""
        if sh.state != SENT:
            return
        self._over(sh, self._clock())
        sh.result = (status, body)
        if sh.primary is not None:
            self._compare(sh)

    def on_failure(
        self, sh: ShadowExchange, conn: UpstreamConnection | None, got_bytes: bool
    ) -> None:
        """A shadow's connection failed: retry a stale pooled one once, else count it."""
        if sh.state != SENT:
            return
        now = self._clock()
        if not got_bytes and conn is not None and sh.reused and not sh.stale_retried:
            sh.stale_retried = True
            sh.replica.in_flight -= 1
            sh.revision.stats.add_in_flight(-1, now)
            self._send(sh, sh.replica, now, fresh=True)
            return
        self._over(sh, now)
        sh.replica.failures += 1
        sh.revision.stats.shadow_failed += 1
        sh.primary = None

    def on_timeout(self, sh: ShadowExchange) -> None:
        """A shadow ran out of time: drop its connection and count it as failed."""
        if sh.state != SENT:
            return
        if sh.upstream is not None:
            sh.upstream.abort()
        self.on_failure(sh, None, True)

    def _over(self, sh: ShadowExchange, now: float) -> None:
        sh.state = DONE
        sh.upstream = None
        self._deadlines.remove(sh)
        sh.replica.in_flight -= 1
        sh.revision.stats.add_in_flight(-1, now)
        sh.deployment.shadow_outstanding -= 1

    def primary_done(self, ex: Exchange, status: int, body: bytes) -> None:
        """The caller got ``status``/``body``: compare with shadows that already answered."""
        shadows, ex.shadows = ex.shadows, None
        for sh in shadows or ():
            if sh.state != DONE:
                sh.primary = (status, body)
            elif sh.result is not None:
                sh.primary = (status, body)
                self._compare(sh)

    def _compare(self, sh: ShadowExchange) -> None:
        assert sh.primary is not None
        assert sh.result is not None
        stats = sh.revision.stats
        if responses_agree(sh.primary[0], sh.primary[1], sh.result[0], sh.result[1]):
            stats.shadow_agreed += 1
        else:
            stats.shadow_disagreed += 1
        sh.primary = sh.result = None


def shadow_request(request: bytes) -> bytes:
    """A primary request's bytes with ``x-modelyard-shadow: 1`` after the request line."""
    cut = request.index(b"\r\n") + 2
    return b"".join((request[:cut], SHADOW_HEADER, request[cut:]))
