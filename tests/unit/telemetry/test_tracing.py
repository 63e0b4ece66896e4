"""modelyard.telemetry: tracing set-up (off by default, lazy imports) and W3C trace context."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from modelyard.core.errors import InvalidInput
from modelyard.telemetry import (
    TraceParent,
    configure_tracing,
    format_traceparent,
    otlp_endpoint_from_env,
    parse_traceparent,
    remote_parent,
    span_ids,
    start_server_span,
    trace_headers,
)

TRACE = 0x0AF7651916CD43DD8448EB211C80319C
SPAN = 0xB7AD6B7169203331
HEADER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


# ---- which endpoint -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"MODELYARD_OTEL_ENDPOINT": "  "}, None),
        ({"MODELYARD_OTEL_ENDPOINT": "http://c:4318"}, "http://c:4318/v1/traces"),
        ({"MODELYARD_OTEL_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/traces"),
        ({"MODELYARD_OTEL_ENDPOINT": "http://c:4318/custom"}, "http://c:4318/custom"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://g:4318/"}, "http://g:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://g:4318/base"}, "http://g:4318/base/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/x"}, "http://t:4318/x"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://g:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/v1/traces",
            },
            "http://t:4318/v1/traces",
        ),
        (
            {
                "MODELYARD_OTEL_ENDPOINT": "http://m:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/v1/traces",
            },
            "http://m:4318/v1/traces",
        ),
    ],
)
def test_the_endpoint_comes_from_modelyard_then_the_standard_variables(
    environ: dict[str, str], expected: str | None
) -> None:
    assert otlp_endpoint_from_env(environ) == expected


def test_tracing_off_imports_no_opentelemetry() -> None:
    """Neither the gateway nor the tracing helpers load OpenTelemetry unless tracing is on."""
    code = (
        "import sys\n"
        "import modelyard.gateway.__main__, modelyard.gateway._run\n"
        "from modelyard.telemetry import configure_tracing, parse_traceparent\n"
        "assert configure_tracing('x') is None\n"
        "assert configure_tracing('x', endpoint='') is None\n"
        f"assert parse_traceparent({HEADER!r}) is not None\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in "
        "('opentelemetry', 'prometheus_client')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_missing_otel_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(InvalidInput, match=r"modelyard\[otel\]"):
        configure_tracing("x", endpoint="http://127.0.0.1:4318/v1/traces")


def test_a_missing_otlp_exporter_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    module = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(InvalidInput, match=r"modelyard\[otel\]"):
        configure_tracing("x", endpoint="http://127.0.0.1:4318/v1/traces")
    # An injected exporter needs no OTLP package.
    provider = configure_tracing("x", exporter=InMemorySpanExporter())
    assert provider is not None
    provider.shutdown()


def test_an_endpoint_gets_a_batching_otlp_exporter() -> None:
    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((self.path, self.headers["content-type"], body))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        provider = configure_tracing("svc", endpoint=endpoint)
        assert provider is not None
        assert provider.resource.attributes["service.name"] == "svc"
        provider.get_tracer("t").start_span("s").end()
        assert received == []  # batched: nothing is sent while the request runs
        provider.shutdown()  # flushes
    finally:
        server.shutdown()
        server.server_close()
    ((path, content_type, body),) = received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    assert b"svc" in body


# ---- spans ----------------------------------------------------------------------------


def test_a_server_span_joins_the_callers_trace_and_parents_the_next() -> None:
    exporter = InMemorySpanExporter()
    provider = configure_tracing("svc", exporter=exporter)
    assert provider is not None
    tracer = provider.get_tracer("test")
    span = start_server_span(
        tracer,
        "predict churn",
        traceparent=HEADER,
        tracestate="a=1,b=2",
        attributes={"modelyard.request_id": "r-1"},
    )
    headers = trace_headers(span)
    span.end()
    (finished,) = exporter.get_finished_spans()
    assert finished.name == "predict churn"
    assert finished.kind is SpanKind.SERVER
    assert finished.parent is not None
    assert (finished.parent.trace_id, finished.parent.span_id) == (TRACE, SPAN)
    assert dict(finished.attributes or {}) == {"modelyard.request_id": "r-1"}
    trace_id, span_id = span_ids(span)
    assert trace_id == TRACE
    assert headers == {
        "traceparent": format_traceparent(TRACE, span_id),
        "tracestate": "a=1,b=2",
    }
    provider.shutdown()


def test_no_or_a_bad_traceparent_starts_a_new_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = configure_tracing("svc", exporter=exporter)
    assert provider is not None
    tracer = provider.get_tracer("test")
    assert remote_parent(None) is None
    for header in (None, "", "garbage", HEADER.upper()):
        span = start_server_span(tracer, "s", traceparent=header)
        span.end()
    spans = exporter.get_finished_spans()
    assert len(spans) == 4
    assert all(s.parent is None for s in spans)
    assert len({s.context.trace_id for s in spans if s.context is not None}) == 4
    provider.shutdown()


# ---- traceparent, parsed and formatted -------------------------------------------------


def test_a_traceparent_is_parsed() -> None:
    parsed = parse_traceparent(HEADER)
    assert parsed == TraceParent(TRACE, SPAN, 1)
    assert parsed.sampled
    assert parsed.trace_id_hex == "0af7651916cd43dd8448eb211c80319c"
    assert parsed.span_id_hex == "b7ad6b7169203331"
    assert parsed.header() == HEADER
    assert parse_traceparent(HEADER.encode()) == parsed
    assert parse_traceparent(f" {HEADER}\t") == parsed
    unsampled = parse_traceparent(HEADER[:-2] + "00")
    assert unsampled is not None
    assert not unsampled.sampled
    # A later version may add fields after the flags.
    assert parse_traceparent("01" + HEADER[2:] + "-what-comes-next") == parsed


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        HEADER.upper(),  # hex must be lowercase
        "ff" + HEADER[2:],  # version ff is invalid
        HEADER + "-more",  # version 00 has exactly four fields
        f"00-{0:032x}-b7ad6b7169203331-01",  # all-zero trace id
        f"00-{TRACE:032x}-{0:016x}-01",  # all-zero span id
        HEADER[:-1],
        HEADER.replace("-", "_"),
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
        "01" + HEADER[2:] + "x",
    ],
)
def test_an_invalid_traceparent_is_none(header: str | None) -> None:
    assert parse_traceparent(header) is None


@given(
    st.integers(1, (1 << 128) - 1),
    st.integers(1, (1 << 64) - 1),
    st.integers(0, 255),
)
def test_traceparent_round_trips(trace_id: int, span_id: int, flags: int) -> None:
    header = format_traceparent(trace_id, span_id, flags=flags)
    assert len(header) == 55
    assert parse_traceparent(header) == TraceParent(trace_id, span_id, flags)


@pytest.mark.parametrize(
    ("trace_id", "span_id", "flags"),
    [(0, 1, 1), (1, 0, 1), (1 << 128, 1, 1), (1, 1 << 64, 1), (1, 1, 256)],
)
def test_an_impossible_trace_context_is_not_formatted(
    trace_id: int, span_id: int, flags: int
) -> None:
    with pytest.raises(ValueError, match="not a valid trace context"):
        format_traceparent(trace_id, span_id, flags=flags)
