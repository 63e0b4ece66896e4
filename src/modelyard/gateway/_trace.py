"""The gateway's spans, loaded only when tracing is on (it imports OpenTelemetry).

Cost (measured on 2 shared cores): ~40 us of CPU per recorded span to create it, plus
~80-130 us to encode and export it (OTLP protobuf, in the batch thread, which also
contends for the GIL); ~12 us per span the sampler drops. Attributes are few for that
reason: each costs ~5 us end to end.

Each proxied request gets a SERVER span ``gateway <deployment>``, a child of the caller's
``traceparent`` when it sent a valid one, from its arrival to the answer (across holds
and retries). The request the replica gets carries the gateway span's ``traceparent``
(and the caller's ``tracestate``), replacing the caller's, so the replica's span is the
gateway span's child. Shadow copies carry the same headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from opentelemetry.trace import Span, Status, StatusCode

from modelyard.telemetry import start_server_span, trace_headers

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from modelyard.gateway._state import LiveReplica, LiveRevision

#: Request headers the gateway reads instead of copying while tracing is on.
TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})

_ERROR = Status(StatusCode.ERROR)


class Answered(Protocol):
    """What a request's span records when it ends (the proxy's exchange)."""

    @property
    def revision(self) -> LiveRevision: ...

    @property
    def replica(self) -> LiveReplica | None: ...

    @property
    def attempts(self) -> int: ...


class GatewayTracer:
    """Starts and ends the gateway's request spans.

    Args:
        provider: From :func:`~modelyard.telemetry.configure_tracing`.
    """

    __slots__ = ("_tracer",)

    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer("modelyard.gateway")

    def start(
        self,
        method: bytes,
        deployment: str,
        request_id: bytes,
        traceparent: bytes | None,
        tracestate: bytes | None,
    ) -> tuple[Span, bytes]:
        """A request's span, and the header lines that make it the replica's parent."""
        span = start_server_span(
            self._tracer,
            "gateway " + deployment,
            traceparent=traceparent.decode("latin-1") if traceparent else None,
            tracestate=tracestate.decode("latin-1") if tracestate else None,
            attributes={
                "http.request.method": method.decode("latin-1"),
                "http.route": f"/{deployment}/*",
                "modelyard.request_id": request_id.decode("latin-1"),
            },
        )
        lines = b"".join(
            b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in trace_headers(span).items()
        )
        return span, lines

    def finish(self, ex: Answered, span: Span, status: int) -> None:
        """The caller got ``status`` (499: it went away first): record and end the span."""
        if span.is_recording():
            span.set_attribute("http.response.status_code", status)
            span.set_attribute("modelyard.revision", ex.revision.number)
            if ex.replica is not None:
                span.set_attribute("modelyard.replica", ex.replica.id)
            span.set_attribute("modelyard.retry_count", max(0, ex.attempts - 1))
            if status >= 500:
                span.set_status(_ERROR)
        span.end()
