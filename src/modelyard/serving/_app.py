"""The inference ASGI application: a lean router, no framework.

Measured on this machine (see ``benchmarks/RESULTS.md``), a raw ASGI callable under
uvicorn (httptools, uvloop) answers a constant faster than Starlette or FastAPI
routing, so the runtime routes by a dict lookup on the path and writes JSON with the
standard library.

Routes: OIP v2 (``/v2``, ``/v2/health/{live,ready}``, ``/v2/models/{m}[/versions/{v}]``
with ``/ready`` and ``/infer``), the MLflow scoring protocol (``/invocations``,
``/ping``, ``/health``, ``/version``), ``/predict`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson

from modelyard.core.errors import InvalidInput, ModelyardError, Unavailable
from modelyard.serving import _mlflow_protocol as mlflow_protocol
from modelyard.serving import _oip as oip
from modelyard.serving import _tracing
from modelyard.serving._metrics import CONTENT_TYPE, ServingMetrics
from modelyard.serving._runtime import ModelRuntime
from modelyard.serving._types import Array
from modelyard.serving.predlog import PredictionLog

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

logger = logging.getLogger("modelyard.serving")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_MODELS = "/v2/models/"


class HTTPError(Exception):
    """An answer other than 200, with a JSON ``{"error": ...}`` body."""

    def __init__(self, status: int, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


class _Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.status, self.body, self.headers = status, body, headers


def _json(value: object, status: int = 200) -> _Response:
    return _Response(status, orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY), _JSON)


class ServingApp:
    """The ASGI app serving one model.

    Args:
        runtime: The model and its inference path.
        metrics: Where requests are counted.
        max_body_bytes: Larger request bodies get 413.
        prediction_log: Where answered predictions are logged (None: nowhere).
        tracer: An OpenTelemetry tracer: each request gets a SERVER span (a child of the
            caller's ``traceparent``) and each prediction a ``model`` span below it. None
            (the default): no tracing, and no header is looked at for it.
    """

    def __init__(
        self,
        runtime: ModelRuntime,
        metrics: ServingMetrics,
        *,
        max_body_bytes: int,
        prediction_log: PredictionLog | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.runtime = runtime
        self.tracer = tracer
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.prediction_log = prediction_log
        self._get: dict[str, Callable[[], _Response]] = {
            "/v2": self._server_metadata,
            "/v2/health/live": lambda: _json({"live": True}),
            "/v2/health/ready": self._ready,
            "/ping": self._ping,
            "/health": self._ping,
            "/version": lambda: _json({"model": runtime.name, "version": runtime.version}),
            "/metrics": lambda: _Response(
                200, metrics.render(), [(b"content-type", CONTENT_TYPE.encode())]
            ),
        }
        self._post: dict[str, Callable[[Any, object], Array]] = {
            "/invocations": mlflow_protocol.decode_invocations,
            "/predict": mlflow_protocol.decode_predict,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        start = time.perf_counter()
        metrics = self.metrics
        metrics.in_flight += 1
        path, method = scope["path"], scope["method"]
        route = path
        if self.tracer is not None:
            scope["modelyard.span"] = _tracing.request_span(self.tracer, scope, self.runtime.name)
        try:
            # The prediction routes first, without the general dispatch's extra frame.
            decode = self._post.get(path) if method == "POST" else None
            if decode is not None:
                body = await self._body(scope, receive)
                response = await self._mlflow_style(body, decode, scope, start)
            else:
                response, route = await self._dispatch(path, method, scope, receive)
        except HTTPError as exc:
            error = {"error": exc.message, **exc.extra}
            if "error_code" in exc.extra:
                error["message"] = exc.message
            response = _json(error, exc.status)
            if exc.status == 404:
                route = "other"
        finally:
            metrics.in_flight -= 1
        body = response.body
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [*response.headers, (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})
        metrics.observe_request(route, response.status, time.perf_counter() - start)
        if self.tracer is not None:
            _tracing.end_request_span(scope, route, response.status)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.runtime.start()
                except Exception as exc:
                    logger.exception("model warm-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                if self.prediction_log is not None:
                    self.prediction_log.start(asyncio.get_running_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                if self.prediction_log is not None:
                    self.prediction_log.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _dispatch(
        self, path: str, method: str, scope: Scope, receive: Receive
    ) -> tuple[_Response, str]:
        if method == "GET":
            handler = self._get.get(path)
            if handler is not None:
                return handler(), path
        if path.startswith(_MODELS):
            return await self._model_route(path[len(_MODELS) :], method, scope, receive)
        if path in self._get or path in self._post:
            raise HTTPError(405, f"method {method} is not allowed on {path}")
        raise HTTPError(404, f"no route {path}")

    async def _model_route(
        self, rest: str, method: str, scope: Scope, receive: Receive
    ) -> tuple[_Response, str]:
        parts = rest.split("/")
        name, tail = parts[0], parts[1:]
        template = "/v2/models/{model}"
        if len(tail) >= 2 and tail[0] == "versions":
            if tail[1] != self.runtime.version:
                raise HTTPError(404, f"model {name!r} has no version {tail[1]!r}")
            tail = tail[2:]
            template += "/versions/{version}"
        if name != self.runtime.name:
            served = self.runtime.name
            raise HTTPError(404, f"model {name!r} not found; this server serves {served!r}")
        action = tail[0] if tail else ""
        if len(tail) > 1 or action not in ("", "ready", "infer"):
            raise HTTPError(404, f"no route /v2/models/{rest}")
        template += f"/{action}" if action else ""
        if action == "infer":
            if method != "POST":
                raise HTTPError(405, "infer takes POST")
            start = time.perf_counter()
            return await self._infer(await self._body(scope, receive), scope, start), template
        if method != "GET":
            raise HTTPError(405, f"{template} takes GET")
        if action == "ready":
            return self._ready(), template
        return self._model_metadata(), template

    async def _body(self, scope: Scope, receive: Receive) -> object:
        limit = self.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length" and int(value) > limit:
                raise HTTPError(413, f"the request body is larger than {limit} bytes")
            if key == b"content-type" and value.startswith(b"text/csv"):
                raise HTTPError(415, "text/csv is not supported; send JSON")
        chunks = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HTTPError(499, "the client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HTTPError(413, f"the request body is larger than {limit} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        try:
            return orjson.loads(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        except orjson.JSONDecodeError as exc:
            raise HTTPError(400, f"the request body is not valid JSON: {exc}") from exc

    # ---- handlers -------------------------------------------------------------------

    def _server_metadata(self) -> _Response:
        from modelyard import __version__

        return _json({"name": "modelyard", "version": __version__, "extensions": []})

    def _ready(self) -> _Response:
        ready = self.runtime.ready
        return _json({"ready": ready}, 200 if ready else 503)

    def _ping(self) -> _Response:
        if not self.runtime.ready:
            raise HTTPError(503, "the model is not loaded yet")
        return _Response(200, b"\n", [(b"content-type", b"application/json")])

    def _model_metadata(self) -> _Response:
        inputs, outputs = oip.tensor_metadata(self.runtime.model.signature)
        return _json(
            {
                "name": self.runtime.name,
                "versions": [self.runtime.version],
                "platform": f"modelyard-{self.runtime.model.flavor}",
                "inputs": inputs,
                "outputs": outputs,
            }
        )

    async def _infer(self, body: object, scope: Scope, start: float) -> _Response:
        runtime = self.runtime
        spec = runtime.spec
        if spec is None:
            raise HTTPError(400, "this model has no numeric signature; use /invocations")
        try:
            rows, request_id, wanted = oip.decode_infer(spec, body)
        except InvalidInput as exc:
            raise HTTPError(400, exc.message) from exc
        try:
            if self.tracer is None:
                prediction = await runtime.infer(rows)
            else:
                with _tracing.model_span(self.tracer, scope, runtime, len(rows)):
                    prediction = await runtime.infer(rows)
        except InvalidInput as exc:
            raise HTTPError(400, exc.message) from exc
        except Exception as exc:
            raise _inference_error(exc) from exc
        try:
            outputs = oip.encode_outputs(prediction, runtime.model.signature, wanted)
        except InvalidInput as exc:
            raise HTTPError(400, exc.message) from exc
        answer: dict[str, object] = {
            "model_name": runtime.name,
            "model_version": runtime.version,
            "outputs": outputs,
        }
        if request_id is not None:
            answer["id"] = request_id
        response = _json(answer)
        if self.prediction_log is not None:
            self._log(response, scope, start, rows, prediction, request_id)
        return response

    async def _mlflow_style(
        self, body: object, decode: Callable[[Any, object], Array], scope: Scope, start: float
    ) -> _Response:
        runtime = self.runtime
        rows: Array | None = None
        try:
            if runtime.spec is None:
                payload = mlflow_protocol.generic_input(body)
                prediction = await runtime.infer_generic(payload)
            else:
                rows = decode(runtime.spec, body)
                if self.tracer is None:
                    prediction = await runtime.infer(rows)
                else:
                    with _tracing.model_span(self.tracer, scope, runtime, len(rows)):
                        prediction = await runtime.infer(rows)
        except InvalidInput as exc:
            # MLflow's scoring server answers {"error_code", "message"}; keep both shapes.
            raise HTTPError(400, exc.message, error_code="BAD_REQUEST") from exc
        except Exception as exc:
            raise _inference_error(exc) from exc
        response = _json(mlflow_protocol.encode_predictions(prediction))
        if self.prediction_log is not None:
            self._log(response, scope, start, rows, prediction)
        return response

    def _log(
        self,
        response: _Response,
        scope: Scope,
        start: float,
        rows: Array | None,
        out: Array,
        body_id: str | None = None,
    ) -> None:
        """Log an answered prediction under its id.

        The id is the OIP body's ``id`` when the caller chose one, else the
        ``x-request-id`` header (the gateway always sets it), else a new one. A new id
        is not sent back: an extra response header cost ~13 µs of CPU per request in
        uvicorn here (measured), and a caller that wants to send labels later names its
        requests itself (or goes through the gateway, which answers with the id).
        """
        log = self.prediction_log
        assert log is not None
        now = log.admit(rows, out)
        if now is None:
            return
        request_id = body_id
        if request_id is None:
            for key, value in scope["headers"]:
                if key == b"x-request-id":
                    request_id = value.decode("latin-1")
                    break
            else:
                request_id = log.new_request_id()
        log.append(now, request_id, response.status, time.perf_counter() - start, rows, out)


def _inference_error(exc: Exception) -> HTTPError:
    """The answer for an exception raised while predicting (not a bad request body)."""
    if isinstance(exc, Unavailable):
        return HTTPError(503, exc.message)
    if isinstance(exc, ModelyardError):
        return HTTPError(400, exc.message)
    error_id = secrets.token_hex(8)
    logger.error("model error %s", error_id, exc_info=exc)
    message = f"the model failed (error id {error_id}); see the server log"
    return HTTPError(500, message, error_id=error_id)
