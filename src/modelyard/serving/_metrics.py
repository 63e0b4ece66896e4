"""Prometheus metrics of the inference runtime, in a registry of its own.

* ``modelyard_serving_requests_total{model, version, route, status}``
* ``modelyard_serving_request_duration_seconds{model, version, route}`` (histogram)
* ``modelyard_serving_batch_size_rows{model, version}`` (histogram of rows per predict)
* ``modelyard_serving_queue_depth{model, version}`` (requests waiting for a batch)
* ``modelyard_serving_in_flight_requests{model, version}`` (what the autoscaler reads)

``route`` is the route template (``/v2/models/{model}/infer``), never the raw path, so
the label set stays bounded. Label children are cached: a request costs two dict
lookups, a histogram observation and a counter increment.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS_S = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServingMetrics:
    """The metrics of one served model.

    Args:
        model: The model name label.
        version: The version label.
        queue_depth: Read at scrape time for the queue-depth gauge.
        registry: Where the metrics live; a fresh one when None (tests build their own).
    """

    def __init__(
        self,
        model: str,
        version: str,
        queue_depth: Callable[[], int],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        labels = ("model", "version")
        self._labels = (model, version)
        self._requests = Counter(
            "modelyard_serving_requests",
            "Requests answered, by route and HTTP status.",
            (*labels, "route", "status"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "modelyard_serving_request_duration_seconds",
            "Time from the request's arrival to its answer.",
            (*labels, "route"),
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        batch = Histogram(
            "modelyard_serving_batch_size_rows",
            "Rows per predict call.",
            labels,
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self._batch = batch.labels(*self._labels)
        depth = Gauge(
            "modelyard_serving_queue_depth",
            "Requests waiting for a batch.",
            labels,
            registry=self.registry,
        )
        depth.labels(*self._labels).set_function(lambda: float(queue_depth()))
        self.in_flight = Gauge(
            "modelyard_serving_in_flight_requests",
            "Requests being handled now.",
            labels,
            registry=self.registry,
        ).labels(*self._labels)
        self._counters: dict[tuple[str, int], Counter] = {}
        self._histograms: dict[str, Histogram] = {}

    def observe_request(self, route: str, status: int, duration_s: float) -> None:
        """Count one answered request and its latency."""
        counter = self._counters.get((route, status))
        if counter is None:
            counter = self._requests.labels(*self._labels, route, str(status))
            self._counters[(route, status)] = counter
        counter.inc()
        histogram = self._histograms.get(route)
        if histogram is None:
            histogram = self._latency.labels(*self._labels, route)
            self._histograms[route] = histogram
        histogram.observe(duration_s)

    def observe_batch(self, rows: int) -> None:
        """Record the row count of one predict call."""
        self._batch.observe(rows)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
