"""The control API under ``/-/``: health, metrics, route updates, stats and wake-up polls.

Every route but ``/-/health`` and ``/-/metrics`` (Prometheus, see
:mod:`~modelyard.gateway._metrics`) needs ``Authorization: Bearer <secret>``. No
deployment can be named ``-``, so ``/-/`` never hides one.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol
from urllib.parse import parse_qs

from modelyard.core.errors import InvalidInput
from modelyard.gateway._proxy import Proxy
from modelyard.gateway._table import RouteTable
from modelyard.gateway._wakeups import Wakeups


class Text:
    """A non-JSON answer body and its content type."""

    __slots__ = ("body", "content_type")

    def __init__(self, content_type: str, body: bytes) -> None:
        self.content_type = content_type
        self.body = body


#: A status and a JSON value (or :class:`Text`).
Answer = tuple[int, object]


class Exposition(Protocol):
    """What ``/-/metrics`` reads from the Prometheus renderer (loaded at the first scrape)."""

    @property
    def content_type(self) -> str: ...

    def render(self) -> bytes: ...


MAX_WAKEUP_TIMEOUT_S = 30.0
DEFAULT_WAKEUP_TIMEOUT_S = 5.0


class ControlApi:
    """Answers ``/-/`` requests.

    Args:
        secret: The bearer token the controller presents.
        proxy: The routes and counters.
        wakeups: Wake signals for long polls.
        clock: Monotonic seconds (``now_s`` in stats).
    """

    def __init__(
        self,
        secret: str,
        proxy: Proxy,
        wakeups: Wakeups,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._expected = b"Bearer " + secret.encode()
        self._proxy = proxy
        self._wakeups = wakeups
        self._clock = clock
        self._metrics: Exposition | None = None

    def handle(
        self, method: bytes, target: bytes, authorization: bytes | None, body: bytes
    ) -> Answer | Coroutine[Any, Any, Answer]:
        """Answer now, or return a coroutine that answers (the long poll)."""
        path, _, query = target.partition(b"?")
        if path == b"/-/health":
            if method not in (b"GET", b"HEAD"):
                return _error(405, "/-/health takes GET")
            return 200, {"status": "ok", "routes_version": self._proxy.routing.version}
        if path == b"/-/metrics":
            if method not in (b"GET", b"HEAD"):
                return _error(405, "/-/metrics takes GET")
            return 200, self.metrics()
        if authorization is None or not hmac.compare_digest(authorization, self._expected):
            return _error(401, "the control API needs 'Authorization: Bearer <secret>'")
        if path == b"/-/routes":
            if method != b"PUT":
                return _error(405, "/-/routes takes PUT")
            return self._routes(body)
        if path == b"/-/stats":
            if method != b"GET":
                return _error(405, "/-/stats takes GET")
            routing = self._proxy.routing
            return 200, routing.stats_json(self._clock())
        if path == b"/-/wakeups":
            if method != b"GET":
                return _error(405, "/-/wakeups takes GET")
            try:
                timeout_s = _timeout(query)
            except InvalidInput as exc:
                return _error(400, exc.message)
            return self._wakeup(timeout_s)
        return _error(404, f"no control route {path.decode(errors='replace')}")

    def metrics(self) -> Text:
        """The Prometheus exposition of the counters, now.

        ``prometheus_client`` is imported at the first scrape, not at start.
        """
        metrics = self._metrics
        if metrics is None:
            from modelyard.gateway._metrics import GatewayMetrics

            metrics = self._metrics = GatewayMetrics(self._proxy.routing)
        return Text(metrics.content_type, metrics.render())

    def _routes(self, body: bytes) -> Answer:
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, f"the route table is not valid JSON: {exc}")
        try:
            table = RouteTable.from_json(obj)
        except InvalidInput as exc:
            return _error(400, exc.message)
        return 200, {"version": self._proxy.apply(table)}

    async def _wakeup(self, timeout_s: float) -> Answer:
        return 200, {"wake": await self._wakeups.wait(timeout_s)}


def _timeout(query: bytes) -> float:
    values = parse_qs(query.decode(errors="replace")).get("timeout_s")
    if not values:
        return DEFAULT_WAKEUP_TIMEOUT_S
    try:
        timeout_s = float(values[0])
    except ValueError:
        raise InvalidInput(f"timeout_s: {values[0]!r} is not a number") from None
    if not timeout_s >= 0:
        raise InvalidInput(f"timeout_s: {values[0]!r} is not a number of seconds >= 0")
    return min(timeout_s, MAX_WAKEUP_TIMEOUT_S)


def _error(status: int, message: str) -> Answer:
    return status, {"error": message}
