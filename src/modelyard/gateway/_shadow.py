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

A copy goes upstream exactly as the caller's request does, through the proxy's
:class:`~modelyard.gateway._send.Sender` (pooled connection, one fresh try after a stale
one, the same deadline). What differs is what follows: a copy's answer is only compared,
never returned to the caller, and a copy that fails is counted ``failed``, never retried
elsewhere, and never affects the caller's request.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from modelyard.gateway._compare import responses_agree
from modelyard.gateway._exchange import DONE, SENT, Exchange, ShadowExchange
from modelyard.gateway._http import SHADOW_HEADER
from modelyard.gateway._send import Failure, Sender
from modelyard.gateway._state import LiveDeployment, LiveRevision
from modelyard.gateway._upstream import UpstreamConnection
from modelyard.gateway._wakeups import Wakeups


class Shadows:
    """Sends shadow copies (through the proxy's :class:`~modelyard.gateway._send.Sender`)
    and keeps their counters.

    Args:
        wakeups: Where a shadow revision without replicas is signalled.
        sender: The proxy's way upstream; copies time out on its deadlines (after the
            deployment's ``request_timeout_s``, like the caller's request).
        clock: Monotonic seconds.
        random: Uniform draws in [0, 1).
    """

    def __init__(
        self,
        wakeups: Wakeups,
        sender: Sender,
        *,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float],
    ) -> None:
        self._wakeups = wakeups
        self._sender = sender
        self._clock = clock
        self._random = random

    def fan_out(self, ex: Exchange, dep: LiveDeployment, primary: LiveRevision, now: float) -> None:
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
            sh = ShadowExchange(self, dep, rev, request, ex.head_request)
            if ex.shadows is None:
                ex.shadows = []
            ex.shadows.append(sh)
            stats.shadow_sent += 1
            dep.shadow_outstanding += 1
            self._sender.deadlines.add(sh, now + dep.request_timeout_s)
            self._sender.send(sh, replica, now)

    def on_response(self, sh: ShadowExchange, status: int, body: bytes) -> None:
        """The shadow replica answered: compare once the primary answer is in too."""
        if sh.state != SENT:
            return
        self._sender.answered(sh, self._clock())
        sh.deployment.shadow_outstanding -= 1
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
        if self._sender.failed(sh, conn, got_bytes, now) is Failure.STALE:
            assert sh.replica is not None
            self._sender.send(sh, sh.replica, now, fresh=True)
            return
        self._failed(sh)

    def on_timeout(self, sh: ShadowExchange) -> None:
        """A shadow ran out of time: drop its connection and count it as failed."""
        if sh.state != SENT:
            return
        self._sender.abort(sh, self._clock())
        self._failed(sh)

    def _failed(self, sh: ShadowExchange) -> None:
        sh.state = DONE
        self._sender.deadlines.remove(sh)
        sh.deployment.shadow_outstanding -= 1
        sh.revision.stats.shadow_failed += 1
        sh.primary = None

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
