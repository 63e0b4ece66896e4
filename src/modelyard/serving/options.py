"""Serving settings, read once (from the command line) and then frozen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelyard.serving.predlog import PredictionLogOptions


@dataclass(frozen=True)
class RuntimeOptions:
    """How a model is served.

    Attributes:
        batching: Coalesce concurrent requests (off: one ``predict`` per request).
        max_batch_size: The most rows in one ``predict`` call.
        max_latency_ms: The queueing-plus-inference budget the batcher plans for.
        threads: Inference threads (and batches in flight at once).
        inline_below_us: Batches the latency model expects to take at most this many
            microseconds run on the event loop, not in a thread (the hand-over costs
            more than they do); 0 sends every batch to a thread.
    """

    batching: bool = True
    max_batch_size: int = 64
    max_latency_ms: float = 5.0
    threads: int = 1
    inline_below_us: float = 100.0


@dataclass(frozen=True)
class ServeOptions:
    """Where and how to serve.

    Attributes:
        host: The address to bind (loopback by default).
        port: The TCP port.
        workers: Server processes sharing the port through ``SO_REUSEPORT``.
        max_body_bytes: Larger request bodies get 413.
        log_level: uvicorn's and the runtime's log level.
        runtime: Batching and inference threads.
        prediction_log: Where and how much of the traffic to log (None: no log).
    """

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = 8 * 1024 * 1024
    log_level: str = "warning"
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    prediction_log: PredictionLogOptions | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ServeOptions:
        """The options :func:`dataclasses.asdict` turned into ``raw``.

        Raises:
            TypeError: a field is unknown or a nested value is not a mapping.
            KeyError: ``runtime`` is missing.
        """
        runtime = raw["runtime"]
        log = raw.get("prediction_log")
        if not isinstance(runtime, Mapping) or not (log is None or isinstance(log, Mapping)):
            raise TypeError("runtime and prediction_log must be mappings")
        return cls(
            **{
                **raw,
                "runtime": RuntimeOptions(**runtime),
                "prediction_log": None if log is None else PredictionLogOptions(**log),
            }
        )
