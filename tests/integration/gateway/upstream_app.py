"""A tiny replica for gateway tests: uvicorn (uvloop, httptools) and a raw ASGI app.

Run: ``python upstream_app.py PORT REPLICA_ID [--single-write]``. Every answer is JSON
naming the replica and echoing what arrived. Query parameters steer it:

- ``delay_s=0.5``: sleep before answering;
- ``status=500``: answer with that status;
- ``break=1`` (``--single-write`` only): send half the response, then hang up;
- path ``/same``: a body that does not depend on the replica (shadow agreement),
  apart from the ignored top-level ``id`` and ``model_name``.

uvicorn writes a response's head and body with two ``write`` calls, so a SIGKILL can land
between them and leave a half response (which the gateway retries once on another
replica, then answers 502).
``--single-write`` serves the same app from a bare asyncio protocol that writes each
response at once, for tests where a killed replica must never have answered partly.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import httptools
import uvicorn

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

REPLICA_ID = sys.argv[2] if len(sys.argv) > 2 else "upstream"


async def answer(
    method: str, path: str, query_string: bytes, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, bytes]:
    """The status and JSON body for a request, after its ``delay_s``."""
    query = parse_qs(query_string.decode())
    delay_s = float(query.get("delay_s", ["0"])[0])
    if delay_s:
        await asyncio.sleep(delay_s)
    status = int(query.get("status", ["200"])[0])
    if path == "/same":
        value: dict[str, object] = {
            "id": REPLICA_ID,
            "model_name": REPLICA_ID,
            "outputs": [1.0, 2.5],
        }
    else:
        value = {
            "replica": REPLICA_ID,
            "method": method,
            "path": path,
            "query": query_string.decode(),
            "headers": {k.decode().lower(): v.decode() for k, v in headers},
            "body_bytes": len(body),
            "body_head": body[:64].decode(errors="replace"),
        }
    return status, json.dumps(value).encode()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Echo the request as JSON, after an optional delay, with an optional status."""
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    status, body = await answer(
        scope["method"], scope["path"], scope["query_string"], scope["headers"], b"".join(chunks)
    )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"x-upstream", b"yes")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SingleWrite(asyncio.Protocol):
    """The same answers over a bare keep-alive protocol: one ``write`` per response."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.tail: asyncio.Future[None] | None = None  # the previous answer, for order

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", [], []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        parsed = httptools.parse_url(self.url)
        work = answer(
            self.parser.get_method().decode(),
            parsed.path.decode(),
            parsed.query or b"",
            self.headers,
            b"".join(self.body),
        )
        previous = self.tail
        broken = b"break=1" in (parsed.query or b"")
        self.tail = asyncio.ensure_future(self._respond(previous, work, broken))

    async def _respond(
        self,
        previous: asyncio.Future[None] | None,
        work: Awaitable[tuple[int, bytes]],
        broken: bool,
    ) -> None:
        status, body = await work
        if previous is not None:
            await previous
        head = (
            f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\nx-upstream: yes\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode()
        assert self.transport is not None
        if broken:
            self.transport.write(head + body[:5])
            self.transport.close()
        elif not self.transport.is_closing():
            self.transport.write(head + body)


async def serve_single_write(port: int) -> None:
    """Serve :class:`SingleWrite` on ``port`` until killed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SingleWrite, "127.0.0.1", port)
    await server.serve_forever()


if __name__ == "__main__":
    if "--single-write" in sys.argv:
        asyncio.run(serve_single_write(int(sys.argv[1])))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )
