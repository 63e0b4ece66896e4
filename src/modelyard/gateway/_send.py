"""The one path to a replica, for proxied requests and shadow copies alike.

:class:`Sender` chooses the connection (an idle pooled keep-alive one, else a fresh one,
which sends through :func:`~modelyard.gateway._exchange.send_when_connected` once up),
keeps the replica's and revision's in-flight counts, holds the deadlines and says what a
failed attempt means (:class:`Failure`). What happens next is the caller's: the proxy
retries, holds or answers the caller; a shadow copy is only counted and compared, and
never touches the caller's request.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from modelyard.gateway._exchange import DONE, SENT, Outgoing

if TYPE_CHECKING:
    from modelyard.gateway._deadlines import Deadlines
    from modelyard.gateway._state import LiveReplica
    from modelyard.gateway._upstream import UpstreamConnection


class Failure(enum.Enum):
    """What a failed attempt means."""

    #: The replica started answering, then the connection broke.
    BROKEN = "broken"
    #: A reused keep-alive connection turned out closed (the replica may have closed it
    #: while idle): the first time, worth one more try on a fresh connection.
    STALE = "stale"
    #: Connecting failed, or a connection broke before any response byte.
    UNREACHABLE = "unreachable"


class Sender:
    """Sends requests to replicas and accounts for every attempt.

    Args:
        deadlines: Where requests time out (their :meth:`~Outgoing.expire` is called).
    """

    __slots__ = ("deadlines",)

    def __init__(self, deadlines: Deadlines) -> None:
        self.deadlines = deadlines

    def send(self, out: Outgoing, replica: LiveReplica, now: float, *, fresh: bool = False) -> None:
        """Send ``out`` to ``replica``: on an idle pooled connection unless ``fresh``."""
        out.state = SENT
        out.replica = replica
        replica.in_flight += 1
        replica.requests += 1
        out.revision.stats.add_in_flight(1, now)
        conn = None if fresh else replica.pool.take()
        if conn is None:
            out.upstream = None
            out.reused = False
            replica.pool.connect(out)
        else:
            out.upstream = conn
            out.reused = True
            conn.send(out, out.request)

    def answered(self, out: Outgoing, now: float) -> None:
        """The replica answered ``out``: it is done, its deadline is off."""
        out.state = DONE
        self.deadlines.remove(out)
        self._count_out(out, now)

    def failed(
        self, out: Outgoing, conn: UpstreamConnection | None, got_bytes: bool, now: float
    ) -> Failure:
        """The attempt failed: count it out and say why.

        Every failure but :attr:`Failure.STALE` counts against the replica. ``out`` stays
        ``SENT`` with its deadline: the caller retries it or ends it.
        """
        self._count_out(out, now)
        if got_bytes:
            failure = Failure.BROKEN
        elif conn is not None and out.reused and not out.stale_retried:
            out.stale_retried = True
            return Failure.STALE
        else:
            failure = Failure.UNREACHABLE
        assert out.replica is not None
        out.replica.failures += 1
        return failure

    def abort(self, out: Outgoing, now: float) -> None:
        """``out`` ran out of time while sent: drop its connection, count a failure."""
        if out.upstream is not None:
            out.upstream.abort()
        self._count_out(out, now)
        assert out.replica is not None
        out.replica.failures += 1

    def _count_out(self, out: Outgoing, now: float) -> None:
        replica = out.replica
        assert replica is not None
        replica.in_flight -= 1
        out.revision.stats.add_in_flight(-1, now)
        out.upstream = None
