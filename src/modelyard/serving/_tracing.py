"""Spans of the serving runtime (only used when tracing is on; see
:mod:`modelyard.telemetry` for how it is switched on).

Each request gets a SERVER span ``<method> <route>`` that continues the caller's trace
(``traceparent``/``tracestate``, e.g. the gateway's span), with the request id; each
prediction a ``model <name>`` span below it covering the wait for its batch and the
``predict`` call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from modelyard.serving._runtime import ModelRuntime

_SPAN = "modelyard.span"


def request_span(tracer: Tracer, scope: MutableMapping[str, Any], model: str) -> Span:
    """Start the request's SERVER span, continuing the caller's trace."""
    from modelyard.telemetry import start_server_span

    traceparent = tracestate = request_id = None
    for key, value in scope["headers"]:
        if key == b"traceparent":
            traceparent = value.decode("latin-1")
        elif key == b"tracestate":
            tracestate = value.decode("latin-1")
        elif key == b"x-request-id":
            request_id = value.decode("latin-1")
    attributes: dict[str, str] = {
        "http.request.method": scope["method"],
        "url.path": scope["path"],
        "modelyard.model": model,
    }
    if request_id is not None:
        attributes["modelyard.request_id"] = request_id
    return start_server_span(
        tracer,
        f"{scope['method']} {scope['path']}",
        traceparent=traceparent,
        tracestate=tracestate,
        attributes=attributes,
    )


def end_request_span(scope: MutableMapping[str, Any], route: str, status: int) -> None:
    span: Span | None = scope.get(_SPAN)
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.update_name(f"{scope['method']} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()


@contextlib.contextmanager
def model_span(
    tracer: Tracer, scope: MutableMapping[str, Any], runtime: ModelRuntime, rows: int
) -> Iterator[None]:
    """A span around one prediction (batch wait included), below the request's span."""
    from opentelemetry import trace

    parent: Span | None = scope.get(_SPAN)
    context = trace.set_span_in_context(parent) if parent is not None else None
    span = tracer.start_span(
        f"model {runtime.name}",
        context=context,
        attributes={
            "modelyard.model": runtime.name,
            "modelyard.model_version": runtime.version,
            "modelyard.rows": rows,
            "modelyard.flavor": runtime.model.flavor,
        },
    )
    try:
        yield
    except BaseException as exc:
        span.record_exception(exc)
        raise
    finally:
        span.end()
