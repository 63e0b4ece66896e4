"""A caller's keep-alive connection: parse requests, answer them in order.

Requests are parsed with ``httptools.HttpRequestParser``; the whole body is buffered
(chunked bodies arrive decoded) up to ``max_body_bytes`` (else 413). Pipelined requests
are dispatched at once and answered in arrival order; reading pauses while too many are
unanswered.

Every request to a deployment gets an id (:mod:`~modelyard.gateway._http`) that the
replica gets as ``x-request-id`` and every answer to it carries, the gateway's own
errors included. ``traceparent``/``tracestate`` are copied like any header unless
tracing is on (:mod:`~modelyard.gateway._trace`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserUpgrade,
    HttpRequestParser,
)

from modelyard.gateway._control import Answer, ControlApi, Text
from modelyard.gateway._exchange import Exchange, Slot
from modelyard.gateway._http import (
    HOP_BY_HOP,
    REQUEST_ID,
    error_response,
    json_body,
    json_headers,
    new_request_id,
    request_id_line,
    response_bytes,
    split_target,
    valid_request_id,
)
from modelyard.gateway._proxy import Proxy
from modelyard.gateway._routing import Routing
from modelyard.gateway._upstream import set_nodelay

if TYPE_CHECKING:
    from modelyard.gateway._trace import GatewayTracer

logger = logging.getLogger("modelyard.gateway")

# Headers the gateway reads or rewrites instead of copying (with tracing on, also
# traceparent and tracestate). A caller's x-modelyard-shadow is dropped: only the
# gateway marks shadow copies.
_SPECIAL = HOP_BY_HOP | {
    b"content-length",
    b"expect",
    b"authorization",
    REQUEST_ID,
    b"x-modelyard-shadow",
}
_WITH_BODY = frozenset({b"POST", b"PUT", b"PATCH"})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_PAUSE_AT = 64  # unanswered pipelined requests before reading pauses
_RESUME_AT = 16


class Context:
    """What every connection of one gateway shares."""

    __slots__ = (
        "all_closed",
        "clock",
        "closing",
        "connections",
        "control",
        "loop",
        "max_body_bytes",
        "proxy",
        "routing",
        "special",
        "tracer",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        proxy: Proxy,
        control: ControlApi,
        max_body_bytes: int,
        clock: Callable[[], float] = time.monotonic,
        tracer: GatewayTracer | None = None,
    ) -> None:
        self.loop = loop
        #: Request spans, when tracing is on.
        self.tracer = tracer
        #: Request headers not copied as they are.
        self.special = _SPECIAL
        if tracer is not None:
            from modelyard.gateway._trace import TRACE_HEADERS

            self.special = _SPECIAL | TRACE_HEADERS
        self.proxy = proxy
        self.routing: Routing = proxy.routing
        self.control = control
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.connections: set[DownstreamConnection] = set()
        #: Shutting down: set ``all_closed`` once the last connection is gone.
        self.closing = False
        self.all_closed = asyncio.Event()


class DownstreamConnection(asyncio.Protocol):
    """One caller connection."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._special = ctx.special
        self.transport: asyncio.Transport | None = None
        self.parser = HttpRequestParser(self)
        self.pending: deque[Slot] = deque()
        self.closed = False
        self.draining = False
        self._stopped = False  # no more requests are read on this connection
        self._paused = False  # too many pipelined requests unanswered
        self._write_paused = False  # the caller is not reading its answers
        self._in_message = False
        self._close_after_message = False
        self._polls: set[asyncio.Task[Answer]] = set()
        self._url = b""
        self._parts: list[bytes] = []
        self._body: list[bytes] = []
        self._size = 0
        self._authorization: bytes | None = None
        self._request_id: bytes | None = None
        self._traceparent: bytes | None = None
        self._tracestate: bytes | None = None
        self._too_large = False
        self._expect_continue = False

    # ---- asyncio callbacks --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        set_nodelay(transport)
        self.ctx.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._stopped:
            return
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade:
            self._refuse(400, "protocol upgrades are not supported")
        except HttpParserCallbackError:
            # A bug of ours, not the caller's: drop the connection rather than leave a
            # request unanswered in its pipeline.
            logger.exception("gateway error while handling a request")
            self._abort()
        except HttpParserError as exc:
            self._refuse(400, f"malformed request: {exc}")

    def pause_writing(self) -> None:
        self._write_paused = True
        if self.transport is not None and not self._paused:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self.transport is not None and not self._paused and not self.closed:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._stopped = True
        ctx = self.ctx
        ctx.connections.discard(self)
        if ctx.closing and not ctx.connections:
            ctx.all_closed.set()
        proxy = ctx.proxy
        for slot in self.pending:
            if isinstance(slot, Exchange):
                proxy.cancel(slot)
        self.pending.clear()
        for task in list(self._polls):
            task.cancel()

    # ---- httptools callbacks --------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_message = True
        self._url = b""
        self._parts = []
        self._body = []
        self._size = 0
        self._authorization = None
        self._request_id = None
        self._traceparent = None
        self._tracestate = None
        self._too_large = False
        self._expect_continue = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower not in self._special:
            self._parts += (name, b": ", value, b"\r\n")
        elif lower == REQUEST_ID:
            # The first one counts; an invalid one is replaced by a fresh id.
            if self._request_id is None and valid_request_id(value):
                self._request_id = value
        elif lower == b"traceparent":  # only read with tracing on
            if self._traceparent is None:
                self._traceparent = value
        elif lower == b"tracestate":
            # Several tracestate headers make one list.
            state = self._tracestate
            self._tracestate = value if state is None else state + b"," + value
        elif lower == b"authorization":
            self._authorization = value
            self._parts += (name, b": ", value, b"\r\n")
        elif lower == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = 0
            if declared > self.ctx.max_body_bytes:
                self._too_large = True
        elif lower == b"expect" and value.lower() == b"100-continue" and not self.pending:
            self._expect_continue = True
        # anything else is hop-by-hop: dropped

    def on_headers_complete(self) -> None:
        if self._too_large:
            self._reject_too_large()
        elif self._expect_continue and self.transport is not None:
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._too_large:
            if self._size > 4 * self.ctx.max_body_bytes + (1 << 20):
                self._abort()  # not worth draining any further
            return
        if self._size > self.ctx.max_body_bytes:
            self._reject_too_large()
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        if self._close_after_message:
            self._stopped = True
            if not self.pending and self.transport is not None:
                self.transport.close()
            return
        if self._too_large or self._stopped:
            return
        parser = self.parser
        keep_alive = parser.should_keep_alive() and not self.draining
        if not keep_alive:
            self._stopped = True
        method = parser.get_method()
        url = self._url
        chunks = self._body
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if url[:3] == b"/-/":
            self._control(method, url, body, not keep_alive)
        elif url[:1] != b"/":
            self._answer(400, "the request target must be a path", not keep_alive, method)
        else:
            self._proxy(method, url, body, not keep_alive)
        if len(self.pending) >= _PAUSE_AT and not self._paused and self.transport is not None:
            self._paused = True
            if not self._write_paused:
                self.transport.pause_reading()

    # ---- dispatch -----------------------------------------------------------------

    def _proxy(self, method: bytes, url: bytes, body: bytes, close: bool) -> None:
        name, rest = split_target(url)
        ctx = self.ctx
        request_id = self._request_id
        if request_id is None:
            request_id = new_request_id()
        id_line = request_id_line(request_id)
        deployment = ctx.routing.by_path.get(name)
        if deployment is None:
            label = name.decode(errors="replace")
            self._answer(404, f"no deployment named {label!r}", close, method, id_line)
            return
        parts = self._parts
        parts.append(id_line)
        span = None
        tracer = ctx.tracer
        if tracer is not None:
            span, trace_lines = tracer.start(
                method, deployment.name, request_id, self._traceparent, self._tracestate
            )
            parts.append(trace_lines)
        if body or method in _WITH_BODY:
            parts.append(b"content-length: %d\r\n" % len(body))
        parts.append(b"\r\n")
        parts.append(body)
        request = b"".join((method, b" ", rest, b" HTTP/1.1\r\n", *parts))
        ctx.proxy.handle(self, deployment, request, method == b"HEAD", close, id_line, span)

    def _control(self, method: bytes, url: bytes, body: bytes, close: bool) -> None:
        answer = self.ctx.control.handle(method, url, self._authorization, body)
        slot = Slot(close)
        self.pending.append(slot)
        head = method == b"HEAD"
        if isinstance(answer, tuple):
            self.respond(slot, _answer_bytes(answer, close, head))
            return
        task = self.ctx.loop.create_task(answer)
        self._polls.add(task)

        def done(task: asyncio.Task[Answer]) -> None:
            self._polls.discard(task)
            result = (200, {"wake": []}) if task.cancelled() else task.result()
            self.respond(slot, _answer_bytes(result, close, head))

        task.add_done_callback(done)

    def _answer(
        self, status: int, message: str, close: bool, method: bytes, extra: bytes = b""
    ) -> None:
        slot = Slot(close)
        self.pending.append(slot)
        head = method == b"HEAD"
        self.respond(slot, error_response(status, message, close=close, head=head, extra=extra))

    def _reject_too_large(self) -> None:
        self._too_large = True
        self._body = []
        self._close_after_message = True
        limit = self.ctx.max_body_bytes
        slot = Slot(close=True)
        self.pending.append(slot)
        request_id = self._request_id or new_request_id()
        message = f"the request body is larger than {limit} bytes"
        extra = request_id_line(request_id) if self._url[:3] != b"/-/" else b""
        self.respond(slot, error_response(413, message, close=True, extra=extra))

    def _refuse(self, status: int, message: str) -> None:
        self._stopped = True
        self._in_message = False
        slot = Slot(close=True)
        self.pending.append(slot)
        self.respond(slot, error_response(status, message, close=True))

    # ---- writing ------------------------------------------------------------------

    def respond(self, slot: Slot, data: bytes) -> None:
        """``slot``'s response is ready; write it and whatever is ready behind it."""
        slot.out = data
        if self.closed:
            return
        pending = self.pending
        transport = self.transport
        assert transport is not None
        while pending:
            head = pending[0]
            out = head.out
            if out is None:
                break
            pending.popleft()
            transport.write(out)
            if head.close:
                self._close()
                return
        if self._paused and len(pending) <= _RESUME_AT:
            self._paused = False
            if not self._write_paused:
                transport.resume_reading()
        if self.draining and not pending and not self._in_message:
            self._close()

    def drain(self) -> None:
        """Shutting down: finish what was asked, take nothing new, then close."""
        self.draining = True
        for task in list(self._polls):
            task.cancel()
        if not self.pending and not self._in_message:
            self._close()

    def _close(self) -> None:
        if self._in_message and not self.closed:
            self._close_after_message = True  # let the caller finish sending first
            return
        self._stopped = True
        if self.transport is not None:
            self.transport.close()

    def _abort(self) -> None:
        self._stopped = True
        if self.transport is not None:
            self.transport.abort()


def _answer_bytes(answer: Answer, close: bool, head: bool) -> bytes:
    status, value = answer
    if isinstance(value, Text):
        headers = b"content-type: %s\r\n" % value.content_type.encode()
        return response_bytes(status, value.body, headers, close=close, head=head)
    return response_bytes(
        status,
        json_body(value),
        json_headers(retry_after=status == 503),
        close=close,
        head=head,
    )
