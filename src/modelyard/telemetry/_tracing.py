"""OpenTelemetry tracing, off by default, and W3C trace-context helpers.

Tracing is on in a process when it is given an OTLP/HTTP endpoint (or, in tests, an
exporter). The endpoint comes from the environment, read once by the caller at process
start with :func:`otlp_endpoint_from_env`; nothing here reads the environment at import
time, and ``opentelemetry`` is imported only when tracing is configured (or a helper that
needs it is called), so a process with tracing off starts no slower and needs no
``otel`` extra.

Joining a trace on the serving side (what the gateway does too)::

    provider = configure_tracing("modelyard-serving", endpoint=otlp_endpoint_from_env(env))
    tracer = provider.get_tracer("modelyard.serving") if provider is not None else None
    ...
    if tracer is not None:  # per request
        span = start_server_span(
            tracer, "predict churn", traceparent=headers.get("traceparent"),
            tracestate=headers.get("tracestate"), attributes={"modelyard.request_id": rid},
        )
        try:
            ...
        finally:
            span.end()

The provider is not installed as OpenTelemetry's global one; call
``opentelemetry.trace.set_tracer_provider(provider)`` for libraries that use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.core.errors import InvalidInput

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.util.types import AttributeValue

#: modelyard's own setting: an OTLP/HTTP collector, e.g. ``http://127.0.0.1:4318``.
ENDPOINT_ENV = "MODELYARD_OTEL_ENDPOINT"
#: The OpenTelemetry standard variables, used when ``MODELYARD_OTEL_ENDPOINT`` is unset.
OTEL_TRACES_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
OTEL_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_TRACES_PATH = "/v1/traces"
_MISSING_EXTRA = (
    "tracing to an OTLP endpoint needs OpenTelemetry: install modelyard[otel] "
    "(opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http)"
)


def otlp_endpoint_from_env(environ: Mapping[str, str]) -> str | None:
    """The OTLP/HTTP traces URL configured in ``environ``, or None (tracing off).

    ``MODELYARD_OTEL_ENDPOINT`` first, then ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (the
    full URL, used as is), then ``OTEL_EXPORTER_OTLP_ENDPOINT`` (a base URL). A base URL
    (no path, or ``/``) gets ``/v1/traces`` appended, as the OpenTelemetry spec says for
    the generic variable; a URL with a path is used as is.

    Args:
        environ: Usually ``os.environ``, read once at process start.
    """
    value = environ.get(ENDPOINT_ENV, "").strip()
    if value:
        return _traces_url(value)
    value = environ.get(OTEL_TRACES_ENDPOINT_ENV, "").strip()
    if value:
        return value
    value = environ.get(OTEL_ENDPOINT_ENV, "").strip()
    if value:
        return value.rstrip("/") + _TRACES_PATH
    return None


def _traces_url(value: str) -> str:
    _, sep, rest = value.partition("://")
    if sep and "/" not in rest.rstrip("/"):
        return value.rstrip("/") + _TRACES_PATH
    return value


def configure_tracing(
    service_name: str,
    *,
    endpoint: str | None = None,
    exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """A tracer provider exporting this process's spans, or None when tracing is off.

    With ``exporter`` (tests: the SDK's ``InMemorySpanExporter``) spans are exported one
    by one as they end (``SimpleSpanProcessor``); with only ``endpoint``, in batches from a
    background thread (``BatchSpanProcessor``) to an OTLP/HTTP (protobuf) collector. The
    sampler is the SDK default (parent-based, always on), so a caller's ``sampled=0``
    flag is honoured. Call ``provider.shutdown()`` at exit to flush the last batch.

    Args:
        service_name: The ``service.name`` resource attribute (``modelyard-gateway``...).
        endpoint: The OTLP/HTTP traces URL (see :func:`otlp_endpoint_from_env`).
        exporter: Where spans go instead of ``endpoint``.

    Raises:
        InvalidInput: tracing is asked for but the ``otel`` extra is not installed.
    """
    if exporter is None and not endpoint:
        return None
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise InvalidInput(_MISSING_EXTRA) from exc
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise InvalidInput(_MISSING_EXTRA) from exc
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


# ---- W3C trace context, without OpenTelemetry ---------------------------------------

_TRACEPARENT_RE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_SAMPLED = 0x01


@dataclass(frozen=True)
class TraceParent:
    """A parsed ``traceparent`` header (W3C Trace Context, version 00).

    Attributes:
        trace_id: The 128-bit trace id (never 0).
        span_id: The 64-bit id of the caller's span, the parent of the next one (never 0).
        flags: The trace flags; bit 0 is "sampled".
    """

    trace_id: int
    span_id: int
    flags: int = _SAMPLED

    @property
    def sampled(self) -> bool:
        """The caller recorded its span (and asks that children be recorded)."""
        return bool(self.flags & _SAMPLED)

    @property
    def trace_id_hex(self) -> str:
        """The trace id as 32 lowercase hex digits, as tracing backends show it."""
        return f"{self.trace_id:032x}"

    @property
    def span_id_hex(self) -> str:
        """The span id as 16 lowercase hex digits."""
        return f"{self.span_id:016x}"

    def header(self) -> str:
        """The ``traceparent`` header value."""
        return format_traceparent(self.trace_id, self.span_id, flags=self.flags)


def parse_traceparent(value: str | bytes | None) -> TraceParent | None:
    """A ``traceparent`` header value, or None when absent or invalid.

    Follows the W3C rules: lowercase hex, version ``ff`` is invalid, version ``00`` has
    exactly four fields, a later version may carry more after the flags; an all-zero
    trace or span id is invalid. An invalid header means "start a new trace".
    """
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    value = value.strip(" \t")
    if len(value) > 512:
        return None
    match = _TRACEPARENT_RE.fullmatch(value)
    if match is None:
        return None
    version, trace_hex, span_hex, flags_hex, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if trace_id == 0 or span_id == 0:
        return None
    return TraceParent(trace_id, span_id, int(flags_hex, 16))


def format_traceparent(trace_id: int, span_id: int, *, flags: int = _SAMPLED) -> str:
    """``00-<trace id>-<span id>-<flags>``.

    Raises:
        ValueError: an id is 0 or out of range, or the flags do not fit a byte.
    """
    if not 0 < trace_id < 1 << 128 or not 0 < span_id < 1 << 64 or not 0 <= flags < 256:
        raise ValueError(f"not a valid trace context: {trace_id:#x} {span_id:#x} {flags:#x}")
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


# ---- joining and propagating traces with OpenTelemetry --------------------------------

_propagator: TextMapPropagator | None = None


def _trace_context() -> TextMapPropagator:
    global _propagator
    if _propagator is None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        _propagator = TraceContextTextMapPropagator()
    return _propagator


def remote_parent(traceparent: str | None, tracestate: str | None = None) -> Context | None:
    """The caller's span as an OpenTelemetry parent context; None or empty: a new trace.

    Args:
        traceparent: The request's ``traceparent`` header, if any.
        tracestate: Its ``tracestate`` header, kept only with a valid ``traceparent``.
    """
    if not traceparent:
        return None
    carrier = {TRACEPARENT: traceparent}
    if tracestate:
        carrier[TRACESTATE] = tracestate
    # An invalid traceparent extracts to an empty context: a span under it is a root.
    return _trace_context().extract(carrier)


def start_server_span(
    tracer: Tracer,
    name: str,
    *,
    traceparent: str | None = None,
    tracestate: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    start_time_ns: int | None = None,
) -> Span:
    """Start a SERVER span for a request, a child of the caller's span if it sent one.

    The span is not made current (no context is attached); end it with ``span.end()``
    and pass :func:`trace_headers` of it on to whatever the request calls next.

    Args:
        tracer: From the provider :func:`configure_tracing` made.
        name: The span name (``gateway churn``, ``predict churn``...).
        traceparent: The request's ``traceparent`` header, if any.
        tracestate: The request's ``tracestate`` header, if any.
        attributes: Attributes known at the start.
        start_time_ns: When the request arrived (``time.time_ns()``); now when None.
    """
    from opentelemetry.trace import SpanKind

    return tracer.start_span(
        name,
        context=remote_parent(traceparent, tracestate),
        kind=SpanKind.SERVER,
        attributes=attributes,
        start_time=start_time_ns,
    )


def trace_headers(span: Span) -> dict[str, str]:
    """``traceparent`` (and ``tracestate`` if any) that make ``span`` the next span's parent.

    What ``TraceContextTextMapPropagator.inject`` writes, formatted directly. Empty for a
    span with no valid context (e.g. from a provider that was shut down).
    """
    context = span.get_span_context()
    if not context.is_valid:
        return {}
    headers = {
        TRACEPARENT: format_traceparent(
            context.trace_id, context.span_id, flags=context.trace_flags
        )
    }
    if context.trace_state:
        headers[TRACESTATE] = context.trace_state.to_header()
    return headers


def span_ids(span: Span) -> tuple[int, int]:
    """``(trace_id, span_id)`` of a span, e.g. to log next to a request id."""
    context = span.get_span_context()
    return context.trace_id, context.span_id
