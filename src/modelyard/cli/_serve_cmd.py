"""``modelyard serve``: run the inference runtime for one model."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli._output import fail, user_errors
from modelyard.net import is_loopback


def serve_cmd(
    model: Annotated[
        str,
        typer.Argument(help="models:/<name>@<alias>, models:/<name>/<version>, or a package dir."),
    ],
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless --allow-remote.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    max_batch_size: Annotated[
        int, typer.Option(min=1, help="Most rows coalesced into one predict call.")
    ] = 64,
    max_latency_ms: Annotated[
        float, typer.Option(min=0.0, help="Latency budget (queueing + inference) for batching.")
    ] = 5.0,
    batching: Annotated[
        bool, typer.Option("--batching/--no-batching", help="Adaptive batching on or off.")
    ] = True,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes sharing the port (SO_REUSEPORT).")
    ] = 1,
    threads: Annotated[
        int, typer.Option(min=1, help="Inference threads per process (batches in flight).")
    ] = 1,
    inline_below_us: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Batches expected to take at most this many µs run on the event loop "
            "instead of a thread (the hand-over costs more); 0: always a thread.",
        ),
    ] = 100.0,
    max_body_mb: Annotated[
        float, typer.Option(min=0.0, help="Request bodies larger than this get 413.")
    ] = 8.0,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow binding a non-loopback address.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "warning",
    log_predictions: Annotated[
        Path | None,
        typer.Option(
            help="Log a sample of requests and predictions as Parquet files in this folder "
            "(request id, latency, features, prediction)."
        ),
    ] = None,
    log_sample_rate: Annotated[
        float, typer.Option(min=0.0001, max=1.0, help="Share of requests logged.")
    ] = 1.0,
    log_max_bytes_per_s: Annotated[
        int, typer.Option(min=1024, help="Byte budget of the log per second; beyond it, drop.")
    ] = 256 << 10,
) -> None:
    """Serve a model: Open Inference Protocol v2, MLflow /invocations, /predict, /metrics."""
    from modelyard.serving import RuntimeOptions, ServeOptions, resolve, serve
    from modelyard.serving.predlog import PredictionLogOptions

    if not is_loopback(host) and not allow_remote:
        fail(f"refusing to bind {host}: pass --allow-remote to serve beyond this machine", 2)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    options = ServeOptions(
        host=host,
        port=port,
        workers=workers,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        log_level=log_level,
        runtime=RuntimeOptions(
            batching=batching,
            max_batch_size=max_batch_size,
            max_latency_ms=max_latency_ms,
            threads=threads,
            inline_below_us=inline_below_us,
        ),
        prediction_log=None
        if log_predictions is None
        else PredictionLogOptions(
            directory=str(log_predictions.resolve()),
            sample_rate=log_sample_rate,
            max_bytes_per_s=log_max_bytes_per_s,
        ),
    )
    with user_errors():
        resolved = resolve(model)
        serve(resolved, options)


def gateway_cmd(
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless --allow-remote.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 5006,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow binding a non-loopback address.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "warning",
) -> None:
    """Run the deployment gateway alone (``modelyard server`` starts one by itself).

    Its control API needs the secret in MODELYARD_GATEWAY_SECRET. With
    MODELYARD_OTEL_ENDPOINT (or OTEL_EXPORTER_OTLP_ENDPOINT) set it traces requests.
    """
    from modelyard.gateway import GatewayOptions, run_gateway

    if not is_loopback(host) and not allow_remote:
        fail(f"refusing to bind {host}: pass --allow-remote to serve beyond this machine", 2)
    secret = os.environ.get("MODELYARD_GATEWAY_SECRET", "")
    if not secret:
        fail("set MODELYARD_GATEWAY_SECRET: the control API's shared secret", 2)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    with user_errors():
        from modelyard.telemetry import otlp_endpoint_from_env

        run_gateway(
            GatewayOptions(
                host=host,
                port=port,
                secret=secret,
                log_level=log_level,
                otel_endpoint=otlp_endpoint_from_env(os.environ),
            )
        )
