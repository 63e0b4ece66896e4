"""``python -m modelyard.gateway --host H --port P`` with ``MODELYARD_GATEWAY_SECRET`` set.

Tracing is on with ``--otel-endpoint URL``, which defaults to what the environment
configures (``MODELYARD_OTEL_ENDPOINT``, else the ``OTEL_EXPORTER_OTLP_*`` variables; see
:func:`~modelyard.telemetry.otlp_endpoint_from_env`); ``--otel-endpoint ''``
turns it off whatever the environment says.
"""

from __future__ import annotations

import argparse
import os
import sys

from modelyard.core.errors import InvalidInput
from modelyard.gateway._options import GatewayOptions
from modelyard.telemetry import otlp_endpoint_from_env

SECRET_ENV = "MODELYARD_GATEWAY_SECRET"  # noqa: S105 - the variable name, not a secret


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, then serve until SIGTERM/SIGINT; the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m modelyard.gateway",
        description="The deployment gateway: routes /<deployment>/... to replicas. "
        f"The control API's bearer secret is read from ${SECRET_ENV}.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=5006, help="TCP port")
    parser.add_argument(
        "--max-body-bytes", type=int, default=8 * 1024 * 1024, help="larger bodies get 413"
    )
    parser.add_argument("--log-level", default="warning", help="log level")
    parser.add_argument(
        "--otel-endpoint",
        default=None,
        help="OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces: trace each "
        "request (needs modelyard[otel]); default: from MODELYARD_OTEL_ENDPOINT or "
        "OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT; '' for off",
    )
    parser.add_argument(
        "--request-log",
        default=None,
        help="write every answered request (id, revision, replica, status, latency) as "
        "Parquet files under this folder, one sub-folder per deployment",
    )
    args = parser.parse_args(argv)
    otel_endpoint = args.otel_endpoint
    if otel_endpoint is None:
        otel_endpoint = otlp_endpoint_from_env(os.environ)
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        print(f"refusing to start: set {SECRET_ENV} to the control API secret", file=sys.stderr)
        return 2
    from modelyard.gateway._run import run_gateway

    try:
        options = GatewayOptions(
            host=args.host,
            port=args.port,
            secret=secret,
            max_body_bytes=args.max_body_bytes,
            log_level=args.log_level,
            otel_endpoint=otel_endpoint or None,
            request_log=args.request_log,
        )
    except InvalidInput as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 2
    try:
        run_gateway(options)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except InvalidInput as exc:  # e.g. tracing asked for without the otel extra
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
