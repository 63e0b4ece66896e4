"""Prometheus metrics of the inference runtime, in a registry of its own.

* ``modelyard_serving_requests_total{model, version, route, status}``
* ``modelyard_serving_request_duration_seconds{model, version, route}`` (histogram)
* ``modelyard_serving_batch_size_rows{model, version}`` (histogram of rows per predict)
* ``modelyard_serving_queue_depth{model, version}`` (requests waiting for a batch)
* ``modelyard_serving_in_flight_requests{model, version}`` (what the autoscaler reads)
* with a prediction log: ``modelyard_prediction_log_requests_total{deployment, revision,
  outcome}`` (``logged``, ``dropped`` by the byte budget, ``sampled_out``) and
  ``modelyard_prediction_log_dropped_total{deployment, revision}``

``route`` is the route template (``/v2/models/{model}/infer``), never the raw path, so
the label set stays bounded.

Every update happens on the event loop's thread, so the values are plain Python numbers
with no lock (``prometheus_client``'s metric objects take a lock per update, which cost
more than the rest of a request's bookkeeping). A collector turns them into metric
families only when ``/metrics`` is scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from modelyard.serving.predlog import PredictionLog

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


class _Histogram:
    """Per-bucket counts (not cumulative) plus an overflow slot, and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative ``(le, count)`` pairs ending with ``+Inf``, as exposition wants."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
        return out


class ServingMetrics:
    """The metrics of one served model.

    Args:
        model: The model name label.
        version: The version label.
        queue_depth: Read at scrape time for the queue-depth gauge.
        registry: Where the metrics are registered; a fresh one when None.
    """

    def __init__(
        self,
        model: str,
        version: str,
        queue_depth: Callable[[], int],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._labels = [model, version]
        self._queue_depth = queue_depth
        self.in_flight = 0
        self._requests: dict[tuple[str, int], int] = {}
        self._latency: dict[str, _Histogram] = {}
        self._batch = _Histogram(_BATCH_BUCKETS)
        self._prediction_log: PredictionLog | None = None
        self.registry.register(_Exporter(self))

    def watch_prediction_log(self, log: PredictionLog) -> None:
        """Export ``log``'s counters too."""
        self._prediction_log = log

    def observe_request(self, route: str, status: int, duration_s: float) -> None:
        """Count one answered request and its latency."""
        key = (route, status)
        requests = self._requests
        requests[key] = requests.get(key, 0) + 1
        histogram = self._latency.get(route)
        if histogram is None:
            histogram = self._latency[route] = _Histogram(_LATENCY_BUCKETS_S)
        histogram.observe(duration_s)

    def observe_batch(self, rows: int) -> None:
        """Record the row count of one predict call."""
        self._batch.observe(rows)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

    def families(self) -> Iterator[Metric]:
        """The current values as Prometheus metric families."""
        labels = ["model", "version"]
        requests = CounterMetricFamily(
            "modelyard_serving_requests",
            "Requests answered, by route and HTTP status.",
            labels=[*labels, "route", "status"],
        )
        for (route, status), count in sorted(self._requests.items()):
            requests.add_metric([*self._labels, route, str(status)], count)
        yield requests
        latency = HistogramMetricFamily(
            "modelyard_serving_request_duration_seconds",
            "Time from the request's arrival to its answer.",
            labels=[*labels, "route"],
        )
        for route, histogram in sorted(self._latency.items()):
            latency.add_metric([*self._labels, route], histogram.buckets(), histogram.total)
        yield latency
        batch = HistogramMetricFamily(
            "modelyard_serving_batch_size_rows", "Rows per predict call.", labels=labels
        )
        batch.add_metric(self._labels, self._batch.buckets(), self._batch.total)
        yield batch
        depth = GaugeMetricFamily(
            "modelyard_serving_queue_depth", "Requests waiting for a batch.", labels=labels
        )
        depth.add_metric(self._labels, float(self._queue_depth()))
        yield depth
        in_flight = GaugeMetricFamily(
            "modelyard_serving_in_flight_requests", "Requests being handled now.", labels=labels
        )
        in_flight.add_metric(self._labels, float(self.in_flight))
        yield in_flight
        log = self._prediction_log
        if log is not None:
            names = [log.options.deployment, str(log.options.revision)]
            outcomes = CounterMetricFamily(
                "modelyard_prediction_log_requests",
                "Answered requests by what the prediction log did with them.",
                labels=["deployment", "revision", "outcome"],
            )
            outcomes.add_metric([*names, "logged"], log.logged)
            outcomes.add_metric([*names, "dropped"], log.dropped)
            outcomes.add_metric([*names, "sampled_out"], log.sampled_out)
            yield outcomes
            dropped = CounterMetricFamily(
                "modelyard_prediction_log_dropped",
                "Requests the prediction log dropped to stay within its byte budget.",
                labels=["deployment", "revision"],
            )
            dropped.add_metric(names, log.dropped)
            yield dropped


class _Exporter(Collector):
    def __init__(self, metrics: ServingMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.families()
