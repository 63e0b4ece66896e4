"""Gateway settings, read once (from the command line and environment) and then frozen."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelyard.core.errors import InvalidInput


@dataclass(frozen=True, kw_only=True)
class GatewayOptions:
    """Where and how the gateway listens.

    Attributes:
        host: The address to bind (loopback by default).
        port: The TCP port.
        secret: The bearer token the control API (``/-/``) requires.
        max_body_bytes: Larger request bodies get 413.
        log_level: The ``modelyard.gateway`` logger's level.
        otel_endpoint: An OTLP/HTTP traces URL: tracing is on, each proxied request gets
            a span (:mod:`~modelyard.gateway._trace`). None (the default): off.
        request_log: A folder for the request log (:mod:`~modelyard.gateway._reqlog`):
            one Parquet file per deployment and second. None (the default): no log.

    Raises:
        InvalidInput: the secret is empty, or the port or body limit is out of range.
    """

    host: str = "127.0.0.1"
    port: int = 5006
    secret: str = field(repr=False)
    max_body_bytes: int = 8 * 1024 * 1024
    log_level: str = "warning"
    otel_endpoint: str | None = None
    request_log: str | None = None

    def __post_init__(self) -> None:
        if not self.secret:
            raise InvalidInput("secret: the control API needs a non-empty secret")
        if not 0 <= self.port <= 65535:
            raise InvalidInput(f"port: {self.port} is not a TCP port")
        if self.max_body_bytes < 0:
            raise InvalidInput(f"max_body_bytes: {self.max_body_bytes} is negative")
