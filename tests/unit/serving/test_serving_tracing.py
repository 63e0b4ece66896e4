"""The runtime's spans continue the caller's trace (SDK in-memory exporter, in process)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modelyard.models import load_model
from modelyard.serving._app import ServingApp
from modelyard.serving._demo import write_demo_package
from modelyard.serving._metrics import ServingMetrics
from modelyard.serving._runtime import ModelRuntime
from modelyard.serving.options import RuntimeOptions
from modelyard.telemetry import configure_tracing, format_traceparent

COLUMNS = [f"f{i}" for i in range(20)]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_package(tmp_path_factory.mktemp("trace") / "churn", "logreg")


def _serve(package: Path, exporter: InMemorySpanExporter | None) -> list[httpx.Response]:
    provider = configure_tracing("modelyard-serving", exporter=exporter) if exporter else None
    tracer = provider.get_tracer("test") if provider is not None else None
    runtime = ModelRuntime(load_model(package), "churn", "1", RuntimeOptions())
    app = ServingApp(
        runtime, ServingMetrics("churn", "1", lambda: 0), max_body_bytes=1 << 20, tracer=tracer
    )
    body = {"dataframe_split": {"columns": COLUMNS, "data": [[0.1] * 20]}}
    parent = format_traceparent(0xABC, 0xDEF)

    async def run() -> list[httpx.Response]:
        await runtime.start()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return [
                    await client.post(
                        "/invocations",
                        json=body,
                        headers={"traceparent": parent, "x-request-id": "r-1"},
                    ),
                    await client.post("/invocations", json={"nope": 1}),
                ]
        finally:
            await runtime.stop()

    try:
        return asyncio.run(run())
    finally:
        if provider is not None:
            provider.shutdown()


def test_request_and_model_spans_join_the_callers_trace(package: Path) -> None:
    exporter = InMemorySpanExporter()
    ok, bad = _serve(package, exporter)
    assert (ok.status_code, bad.status_code) == (200, 400)
    finished = exporter.get_finished_spans()
    requests = [s for s in finished if s.name == "POST /invocations"]
    (request,) = [s for s in requests if s.attributes["http.response.status_code"] == 200]
    (model,) = [s for s in finished if s.name == "model churn"]
    assert request.context.trace_id == 0xABC
    assert request.parent is not None
    assert request.parent.span_id == 0xDEF
    assert model.parent is not None
    assert model.parent.span_id == request.context.span_id
    assert request.attributes["modelyard.request_id"] == "r-1"
    assert request.attributes["http.response.status_code"] == 200
    assert model.attributes["modelyard.rows"] == 1
    # The bad request has a span of its own, with its status, and a fresh trace.
    (bad_span,) = [s for s in requests if s.attributes["http.response.status_code"] == 400]
    assert bad_span.context.trace_id != 0xABC


def test_without_a_tracer_nothing_is_traced(package: Path) -> None:
    ok, _ = _serve(package, None)
    assert ok.status_code == 200
