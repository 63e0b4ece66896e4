"""An in-process HTTP server that records every request it gets, for header-level checks.

It serves from a thread (``http.server``, HTTP/1.1 keep-alive) so that both a gateway
process and a gateway embedded in the test's own event loop can reach it. Answers are
JSON (``{"ok": true, "path": ...}``); query parameters steer it: ``status=N`` answers
with that status, ``delay_s=S`` sleeps first, ``echo_id=1`` sends the request's
``x-request-id`` back (as the serving runtime may). It doubles as an OTLP collector: a
``POST /v1/traces`` is recorded like anything else and answered 200.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Seen:
    """One request as it arrived."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def values(self, name: str) -> list[str]:
        """Every value of a header (case-insensitive), in order."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def one(self, name: str) -> str:
        """The only value of a header; fails if it is missing or repeated."""
        values = self.values(name)
        assert len(values) == 1, (name, self.headers)
        return values[0]


class RecordingUpstream:
    """Listen on 127.0.0.1 (a free port) until :meth:`close`."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, list(self.headers.items()), body)
                with recorder._lock:
                    recorder.seen.append(seen)
                query = parse_qs(urlsplit(self.path).query)
                delay_s = float(query.get("delay_s", ["0"])[0])
                if delay_s:
                    time.sleep(delay_s)
                status = int(query.get("status", ["200"])[0])
                out = json.dumps({"ok": True, "path": urlsplit(self.path).path}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                if query.get("echo_id") == ["1"] and "x-request-id" in self.headers:
                    self.send_header("x-request-id", self.headers["x-request-id"])
                try:
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(out)
                except OSError:  # the gateway gave up on this request (a timeout test)
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_HEAD = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def route(self, replica_id: str) -> dict[str, object]:
        """Its entry in a route table."""
        return {"id": replica_id, "host": "127.0.0.1", "port": self.port}

    def wait_seen(self, count: int, timeout_s: float = 20.0) -> list[Seen]:
        """The requests recorded, once there are at least ``count``."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                if len(self.seen) >= count:
                    return list(self.seen)
            assert time.monotonic() < deadline, f"{len(self.seen)} of {count} requests seen"
            time.sleep(0.01)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
