"""Tracing: OpenTelemetry set-up (off by default) and W3C trace-context helpers.

A low-level package that the gateway, the model server, deployments and monitoring all
use; it imports only :mod:`modelyard.core` (and OpenTelemetry, lazily, when tracing is
on). See ``docs/monitoring-tracing.md``.
"""

from __future__ import annotations

from modelyard.telemetry._tracing import (
    ENDPOINT_ENV,
    OTEL_ENDPOINT_ENV,
    OTEL_TRACES_ENDPOINT_ENV,
    TRACEPARENT,
    TRACESTATE,
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

__all__ = [
    "ENDPOINT_ENV",
    "OTEL_ENDPOINT_ENV",
    "OTEL_TRACES_ENDPOINT_ENV",
    "TRACEPARENT",
    "TRACESTATE",
    "TraceParent",
    "configure_tracing",
    "format_traceparent",
    "otlp_endpoint_from_env",
    "parse_traceparent",
    "remote_parent",
    "span_ids",
    "start_server_span",
    "trace_headers",
]
