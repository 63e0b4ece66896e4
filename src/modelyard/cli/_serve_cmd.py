"""``modelyard serve``: run the inference runtime for one model."""

from __future__ import annotations

import logging
import os
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
) -> None:
    """Serve a model: Open Inference Protocol v2, MLflow /invocations, /predict, /metrics."""
    from modelyard.serving import RuntimeOptions, ServeOptions, resolve, serve

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

    Its control API needs the secret in MODELYARD_GATEWAY_SECRET.
    """
    from modelyard.gateway import GatewayOptions, run_gateway

    if not is_loopback(host) and not allow_remote:
        fail(f"refusing to bind {host}: pass --allow-remote to serve beyond this machine", 2)
    secret = os.environ.get("MODELYARD_GATEWAY_SECRET", "")
    if not secret:
        fail("set MODELYARD_GATEWAY_SECRET: the control API's shared secret", 2)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    with user_errors():
        run_gateway(GatewayOptions(host=host, port=port, secret=secret, log_level=log_level))
