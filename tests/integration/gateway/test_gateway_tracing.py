"""Tracing: a SERVER span per request, joined to the caller's trace and passed upstream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import httpx
import pytest
from gateway_harness import SECRET, GatewayProcess
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from recording_upstream import RecordingUpstream

from modelyard.gateway import Gateway, GatewayOptions, RouteTable
from modelyard.net import listen_socket
from modelyard.telemetry import configure_tracing, parse_traceparent

pytestmark = pytest.mark.slow

CALLER_TRACE = 0x0AF7651916CD43DD8448EB211C80319C
CALLER_SPAN = 0xB7AD6B7169203331
CALLER = f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-01"


@pytest.fixture
def upstream() -> Iterator[RecordingUpstream]:
    up = RecordingUpstream()
    try:
        yield up
    finally:
        up.close()


def _table(upstream: RecordingUpstream, **limits: object) -> RouteTable:
    return RouteTable.from_json(
        {
            "version": 1,
            "deployments": [
                {
                    "name": "traced",
                    "revisions": [
                        {"revision": 3, "weight": 100, "replicas": [upstream.route("t-r")]}
                    ],
                    **limits,
                }
            ],
        }
    )


def _through_gateway(
    table: RouteTable,
    requests: Sequence[tuple[str, list[tuple[str, str]]]],
    provider: TracerProvider | None,
) -> list[httpx.Response]:
    """Send GETs one by one through a gateway embedded in this test's loop."""

    async def scenario() -> list[httpx.Response]:
        gateway = Gateway(GatewayOptions(secret=SECRET), tracer_provider=provider)
        await gateway.start(listen_socket("127.0.0.1", 0, reuse_port=False))
        try:
            gateway.apply_routes(table)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}") as client:
                return [await client.get(path, headers=headers) for path, headers in requests]
        finally:
            await gateway.close(grace_s=5)

    return asyncio.run(scenario())


def _traced(
    upstream: RecordingUpstream,
    requests: Sequence[tuple[str, list[tuple[str, str]]]],
    **limits: object,
) -> tuple[list[httpx.Response], list[ReadableSpan]]:
    exporter = InMemorySpanExporter()
    provider = configure_tracing("modelyard-gateway", exporter=exporter)
    assert provider is not None
    try:
        responses = _through_gateway(_table(upstream, **limits), requests, provider)
    finally:
        provider.shutdown()
    return responses, list(exporter.get_finished_spans())


def test_the_gateway_span_joins_the_callers_trace_and_parents_the_replicas(
    upstream: RecordingUpstream,
) -> None:
    headers = [("traceparent", CALLER), ("tracestate", "vendor=abc"), ("x-request-id", "t-1")]
    (response,), spans = _traced(upstream, [("/traced/predict", headers)])
    assert response.status_code == 200
    (span,) = spans
    assert span.name == "gateway traced"
    assert span.kind is SpanKind.SERVER
    assert span.context is not None
    assert span.context.trace_id == CALLER_TRACE
    assert span.parent is not None
    assert span.parent.span_id == CALLER_SPAN
    assert span.parent.is_remote
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "http.route": "/traced/*",
        "modelyard.request_id": "t-1",
        "http.response.status_code": 200,
        "modelyard.revision": 3,
        "modelyard.replica": "t-r",
        "modelyard.retry_count": 0,
    }
    assert span.status.status_code is StatusCode.UNSET
    # The replica gets the gateway span as its parent, in the caller's trace.
    (seen,) = upstream.wait_seen(1)
    sent = parse_traceparent(seen.one("traceparent"))
    assert sent is not None
    assert sent.trace_id == CALLER_TRACE
    assert sent.span_id == span.context.span_id
    assert sent.sampled
    assert seen.one("tracestate") == "vendor=abc"
    assert seen.one("x-request-id") == "t-1"


def test_without_a_valid_caller_trace_the_gateway_starts_one(
    upstream: RecordingUpstream,
) -> None:
    invalid = f"00-{0:032x}-{CALLER_SPAN:016x}-01"  # an all-zero trace id
    requests = [("/traced/a", []), ("/traced/b", [("traceparent", invalid)])]
    responses, spans = _traced(upstream, requests)
    assert [r.status_code for r in responses] == [200, 200]
    assert len(spans) == 2
    seen = upstream.wait_seen(2)
    for span, request in zip(spans, seen, strict=True):
        assert span.parent is None
        assert span.context is not None
        sent = parse_traceparent(request.one("traceparent"))
        assert sent is not None
        assert (sent.trace_id, sent.span_id) == (span.context.trace_id, span.context.span_id)
    assert spans[0].context is not None
    assert spans[1].context is not None
    assert spans[0].context.trace_id != spans[1].context.trace_id


def test_an_unsampled_caller_trace_is_followed_not_recorded(
    upstream: RecordingUpstream,
) -> None:
    unsampled = CALLER[:-2] + "00"
    (response,), spans = _traced(upstream, [("/traced/x", [("traceparent", unsampled)])])
    assert response.status_code == 200
    assert spans == []
    sent = parse_traceparent(upstream.wait_seen(1)[0].one("traceparent"))
    assert sent is not None
    assert sent.trace_id == CALLER_TRACE
    assert not sent.sampled


def test_a_gateway_timeout_is_an_error_span(upstream: RecordingUpstream) -> None:
    requests = [("/traced/slow?delay_s=0.5", [("traceparent", CALLER)])]
    (response,), spans = _traced(upstream, requests, request_timeout_s=0.1)
    assert response.status_code == 504
    (span,) = spans
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["http.response.status_code"] == 504
    assert span.parent is not None
    assert span.parent.span_id == CALLER_SPAN


def test_with_tracing_off_trace_headers_pass_through_untouched(
    upstream: RecordingUpstream,
) -> None:
    headers = [("traceparent", CALLER), ("tracestate", "vendor=abc")]
    (response,) = _through_gateway(_table(upstream), [("/traced/x", headers)], None)
    assert response.status_code == 200
    (seen,) = upstream.wait_seen(1)
    assert seen.values("traceparent") == [CALLER]
    assert seen.values("tracestate") == ["vendor=abc"]


def test_a_gateway_process_exports_spans_to_its_otel_endpoint(
    upstream: RecordingUpstream,
) -> None:
    collector = RecordingUpstream()
    gateway = GatewayProcess("--otel-endpoint", f"{collector.url}/v1/traces")
    try:
        gateway.push(
            {
                "name": "otel-proc",
                "revisions": [{"revision": 1, "weight": 100, "replicas": [upstream.route("o")]}],
            }
        )
        r = httpx.get(f"{gateway.url}/otel-proc/x", headers={"traceparent": CALLER})
        assert r.status_code == 200
        assert gateway.stop() == 0  # a graceful stop flushes the last batch
        (export,) = [s for s in collector.wait_seen(1) if s.path == "/v1/traces"]
    finally:
        gateway.close()
        collector.close()
    assert export.method == "POST"
    assert export.one("content-type") == "application/x-protobuf"
    message = ExportTraceServiceRequest()
    message.ParseFromString(export.body)
    (resource_spans,) = message.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "modelyard-gateway"
    (span,) = [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert span.name == "gateway otel-proc"
    assert span.trace_id == CALLER_TRACE.to_bytes(16, "big")
    assert span.parent_span_id == CALLER_SPAN.to_bytes(8, "big")
    sent = parse_traceparent(upstream.wait_seen(1)[0].one("traceparent"))
    assert sent is not None
    assert sent.span_id.to_bytes(8, "big") == span.span_id
