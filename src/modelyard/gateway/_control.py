"""The control API under ``/-/``: health, route updates, stats and wake-up long polls.

Every route but ``/-/health`` needs ``Authorization: Bearer <secret>``.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs

from modelyard.core.errors import InvalidInput
from modelyard.gateway._proxy import Proxy
from modelyard.gateway._table import RouteTable
from modelyard.gateway._wakeups import Wakeups

#: A status and a JSON value.
Answer = tuple[int, object]

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

    def handle(
        self, method: bytes, target: bytes, authorization: bytes | None, body: bytes
    ) -> Answer | Coroutine[Any, Any, Answer]:
        """Answer now, or return a coroutine that answers (the long poll)."""
        path, _, query = target.partition(b"?")
        if path == b"/-/health":
            if method not in (b"GET", b"HEAD"):
                return _error(405, "/-/health takes GET")
            return 200, {"status": "ok", "routes_version": self._proxy.routing.version}
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
