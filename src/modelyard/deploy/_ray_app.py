"""Ray Serve backend, the code that runs inside Ray: the revision runtime and the ingress.

- :class:`RevisionServer` (one Serve deployment ``rev-<n>`` per revision) fetches the
  revision's model package from Ray's GCS key-value store, where the backend put it,
  unpacks it into a private folder on whatever node it landed on, and loads it with
  :func:`modelyard.serving.embedded.load_app`: the model's digests are verified again
  there, and requests are answered by the very app ``modelyard serve`` runs (OIP v2,
  ``/invocations``, batching, the same errors).
- :class:`Ingress` (Serve deployment ``ingress``, the application's HTTP entry) answers
  ``/v2/health/live`` itself and hands every other request, as plain values, to a
  revision picked by weight (:func:`~modelyard.deploy._ray_plan.choose`) through a
  ``DeploymentHandle``. Its routes come from ``user_config``, so a weight change
  reconfigures running ingress replicas instead of restarting them. A request whose
  revision replica died under it (its node was lost) is sent once more, to a live one:
  predictions have no side effects. Every request it routes is counted for its revision
  with the local gateway's counters (:class:`~modelyard.gateway.stats.RevisionStats`:
  arrivals, in flight, the time integral of in flight, service times, errors, latency);
  :meth:`Ingress.record_routing_stats` reports them, and the backend reads that from
  every ingress replica as the load signal of modelyard's own autoscaler.

Serve calls these classes; modelyard's driver never does (it only names them).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import random
import shutil
import tarfile
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from modelyard.deploy._ray_plan import ROUTES_KEY, choose, revision_number
from modelyard.gateway.stats import RevisionStats
from modelyard.serving.embedded import EmbeddedApp, load_app
from modelyard.serving.options import RuntimeOptions
from modelyard.serving.server import ResolvedModel

logger = logging.getLogger("modelyard.deploy")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
# A request or response as plain values, the way it travels between deployments:
# (method, path, query string, headers, body) and (status, headers, body).
Request = tuple[str, str, bytes, list[tuple[bytes, bytes]], bytes]
Response = tuple[int, list[tuple[bytes, bytes]], bytes]

REVISION_HEADER = b"x-modelyard-revision"
# Set on an answer that came from a second replica after the first was lost under it.
RESENT_HEADER = b"x-modelyard-resent"
# The Serve replica that answered (its id in ``observe``), for debugging and the tests.
REPLICA_HEADER = b"x-modelyard-replica"
MAX_BODY_BYTES = 8 * 1024 * 1024
_JSON = [(b"content-type", b"application/json")]


def pack(folder: Path) -> bytes:
    """A package folder as one gzip'd tar (files only, relative names)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> None:
    """Extract what :func:`pack` made; the ``data`` filter refuses links, devices and
    paths leaving ``folder``."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        tar.extractall(folder, filter="data")


def _fetch(key: str, namespace: str) -> bytes:
    from ray.experimental.internal_kv import _internal_kv_get

    data = _internal_kv_get(key, namespace=namespace)
    if data is None:
        raise FileNotFoundError(
            f"model package {key!r} is not in the cluster's store (the deployment was "
            "removed, or the package was never shipped)"
        )
    return bytes(data)


class RevisionServer:
    """One replica of one revision: the model runtime, fed by the ingress.

    Args:
        spec: :func:`modelyard.deploy._ray_plan.revision_spec` — the package key and
            the model's name, version, registered digests and runtime settings.
    """

    # Ray actors may have an ``async def __init__``; Serve awaits it before routing.
    async def __init__(self, spec: dict[str, Any]) -> None:  # type: ignore[misc]
        self.revision = int(spec["revision"])
        self._replica = _replica_tag().encode()
        self._folder = Path(
            tempfile.mkdtemp(prefix=f"modelyard-rev{self.revision}-", dir=_scratch())
        )
        self._app: EmbeddedApp | None = None
        try:
            data = await asyncio.to_thread(_fetch, spec["package_key"], spec["kv_namespace"])
            await asyncio.to_thread(unpack, data, self._folder)
            resolved = ResolvedModel(
                self._folder,
                str(spec["model_name"]),
                str(spec["model_version"]),
                dict(spec["expected_files"]),
            )
            app = await asyncio.to_thread(
                load_app,
                resolved,
                RuntimeOptions(**spec["runtime"]),
                max_body_bytes=int(spec["max_body_bytes"]),
            )
            await app.start()
            self._app = app
        except BaseException:
            shutil.rmtree(self._folder, ignore_errors=True)
            raise

    async def handle(self, request: Request) -> Response:
        """Answer one HTTP request with the runtime's ASGI app."""
        assert self._app is not None
        status, headers, body = await call_asgi(self._app.app, request)
        return status, [*headers, (REPLICA_HEADER, self._replica)], body

    def check_health(self) -> None:
        """Serve's periodic health check: fails once the runtime stopped."""
        if self._app is None or not self._app.ready:
            raise RuntimeError(f"revision {self.revision}: the model runtime is not running")

    def __del__(self) -> None:
        """Serve's graceful shutdown, once in-flight requests have finished: drop the
        unpacked files (the process ends right after, taking the runtime's threads).

        Synchronous on purpose: Python's collector may call ``__del__`` too, and an
        ``async`` one would leave an un-awaited coroutine behind each time.
        """
        self._app = None
        folder = getattr(self, "_folder", None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _replica_tag() -> str:
    """Serve's id of this replica (the id ``observe`` reports), for the answer's header."""
    from ray import serve

    try:
        return str(serve.get_replica_context().replica_tag)
    except Exception:  # outside a Serve replica
        return ""


def _scratch() -> str | None:
    # Ray's temp dir when set (removed with the cluster), else the system's.
    return os.environ.get("RAY_TMPDIR") or None


async def call_asgi(app: Callable[..., Awaitable[None]], request: Request) -> Response:
    """Run one HTTP request through an ASGI app in this process; collect the answer."""
    method, path, query, headers, body = request
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": None,
        "server": None,
    }
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 500
    out_headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status, out_headers
        if message["type"] == "http.response.start":
            status = int(message["status"])
            out_headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    return status, out_headers, b"".join(chunks)


class Ingress:
    """The application's HTTP entry: routes requests to revisions by weight.

    Args:
        app: The Serve application it belongs to (for handles by name).
        revisions: The bound revision deployments; passed only so Serve deploys them
            with the ingress. Routing goes by ``user_config`` and names, so a running
            ingress follows revisions added after it started.
    """

    def __init__(self, app: str, revisions: Sequence[Any] = ()) -> None:
        # Not ``self.app``: Serve's ASGI wrapper, our subclass at run time, owns that name.
        self.app_name = app
        self._routes: list[list[Any]] = []
        self._handles: dict[str, Any] = {}
        self._router = Router(self)
        # Per revision number, cumulative since this replica started. Requests, Serve's
        # reconfigure and the stats hook all run on the replica's one user-code event
        # loop, so the counters need no lock (as in the gateway).
        self._stats: dict[int, RevisionStats] = {}

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Serve's in-place update: the new routing table ``[[deployment, weight]]``."""
        table = [[str(row[0]), int(row[1])] for row in config.get(ROUTES_KEY, [])]
        self._routes = table
        for name in list(self._handles):
            if name not in {row[0] for row in table}:
                del self._handles[name]

    def __serve_build_asgi_app__(self) -> Router:
        """The ASGI app Serve mounts at the application's route prefix."""
        return self._router

    def pick(self, exclude: str | None = None) -> str | None:
        """A revision for the next request (another one than ``exclude`` if possible)."""
        return choose(self._routes, random.random(), avoid=exclude)

    def stats_for(self, name: str) -> RevisionStats:
        """The counters of revision deployment ``name`` (``rev-<n>``), made on first use."""
        number = revision_number(name)
        key = -1 if number is None else number
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = RevisionStats(time.monotonic())
        return stats

    async def record_routing_stats(self) -> dict[str, Any]:
        """This replica's counters per revision: ``{"now_s": …, "revisions": {"<n>":
        counters}}``, each in the gateway's stats API form with ``load_area`` accrued up
        to ``now_s`` (this process's monotonic clock).

        Serve's per-replica stats hook: the backend calls it on every ingress replica
        actor (:data:`~modelyard.deploy._ray_plan.LOAD_METHOD`); Serve also calls it
        every 10 s and hands the result to request routers, which ignore it. A
        coroutine, so Serve runs it on the event loop that routes the requests (a plain
        method may run on a thread beside it while the counters change).
        """
        now = time.monotonic()
        revisions = {str(n): s.to_json(now) for n, s in sorted(self._stats.items()) if n >= 0}
        return {"now_s": now, "revisions": revisions}

    def handle(self, name: str) -> Any:
        """The handle of revision deployment ``name`` (made once, then reused)."""
        handle = self._handles.get(name)
        if handle is None:
            from ray import serve

            handle = serve.get_deployment_handle(name, self.app_name)
            handle = handle.options(method_name="handle")
            self._handles[name] = handle
        return handle


class Router:
    """The ingress's ASGI app (a plain callable: no framework on the hot path)."""

    def __init__(self, ingress: Ingress) -> None:
        self.ingress = ingress

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = _relative(scope)
        if path == "/v2/health/live":
            await _send(send, 200, _JSON, b'{"live":true}')
            return
        try:
            body = await _read_body(scope, receive)
        except _TooLarge:
            await _send_error(send, 413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
            return
        headers = [(bytes(k), bytes(v)) for k, v in scope.get("headers", [])]
        request: Request = (scope["method"], path, scope.get("query_string", b""), headers, body)
        chosen = self.ingress.pick()
        if chosen is None:
            await _send_error(send, 503, "no revision of this deployment is routed yet")
            return
        # Counted for the revision first chosen (a re-sent request stays its), as the
        # gateway counts: arrival, in flight until answered, then the answer.
        stats = self.ingress.stats_for(chosen)
        start = time.monotonic()
        stats.arrivals += 1
        stats.add_in_flight(1, start)
        status = 499  # the caller went away (the request was cancelled) before an answer
        try:
            status, out_headers, out_body, answered = await self._forward(request, chosen)
        finally:
            end = time.monotonic()
            stats.add_in_flight(-1, end)
            stats.complete(status, end - start)
        if answered is not None:
            stats.observe_service(answered[1])
            out_headers = [*out_headers, (REVISION_HEADER, answered[0].encode())]
        await _send(send, status, out_headers, out_body)

    async def _forward(
        self, request: Request, chosen: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, tuple[str, float] | None]:
        """Send ``request`` to revision ``chosen`` (once more, elsewhere, if its replica
        was lost under it). The last item: the revision number that answered and how
        long its replica took, or None when the answer is the ingress's own error."""
        from ray import exceptions as rex
        from ray.serve.exceptions import ReplicaUnavailableError

        lost = (
            rex.ActorDiedError,
            rex.ActorUnavailableError,
            rex.RayActorError,
            ReplicaUnavailableError,
        )
        ingress = self.ingress
        for attempt in (1, 2):
            sent = time.monotonic()
            try:
                status, headers, body = await ingress.handle(chosen).remote(request)
                if attempt == 2:
                    headers = [*headers, (RESENT_HEADER, b"1")]
                took = (chosen.removeprefix("rev-"), time.monotonic() - sent)
                return status, headers, body, took
            except lost as exc:
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                if attempt == 2:
                    return (*_error(503, f"the replica was lost: {reason}"), None)
                logger.warning("a replica of %s was lost (%s); sending again", chosen, reason)
                chosen = ingress.pick(exclude=chosen) or chosen
            except Exception as exc:  # Serve's own errors: back-pressure, timeouts…
                logger.warning("forwarding to %s failed: %r", chosen, exc)
                return (*_error(503, f"{type(exc).__name__}: {str(exc)[:200]}"), None)
        raise AssertionError("unreachable")


class _TooLarge(Exception):
    pass


def _relative(scope: Scope) -> str:
    """The path below the application's route prefix (Serve keeps the full path and puts
    the prefix in ``root_path``)."""
    path = str(scope.get("path", "/"))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


async def _read_body(scope: Scope, receive: Callable[[], Awaitable[Message]]) -> bytes:
    for key, value in scope.get("headers", []):
        if bytes(key).lower() == b"content-length" and int(value) > MAX_BODY_BYTES:
            raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _error(status: int, message: str) -> Response:
    return status, list(_JSON), orjson.dumps({"error": message})


async def _send_error(send: Callable[[Message], Awaitable[None]], status: int, text: str) -> None:
    await _send(send, *_error(status, text))


async def _send(
    send: Callable[[Message], Awaitable[None]],
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    kept = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*kept, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(
    receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
