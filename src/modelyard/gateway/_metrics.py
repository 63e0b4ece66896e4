"""``GET /-/metrics``: the gateway's counters in the Prometheus text format.

Public like the API server's ``/metrics`` (no secret). A deployment cannot be named ``-``
(names start with a letter or digit), so ``/-/metrics`` never hides a deployment's
route. Everything is rendered at scrape time from the counters the stats API reports
(:class:`~modelyard.gateway.stats.RevisionStats`); requests pay only for a per-status
count and a latency sum. Per (deployment, revision):

* ``modelyard_gateway_requests_total{code}``: answers sent to callers, by HTTP status
  (``499``: the caller went away before its answer; the gateway's own 502/503/504
  count too);
* ``modelyard_gateway_request_duration_seconds``: arrival to answer, a histogram whose
  bounds are every fourth of :data:`~modelyard.gateway.stats.LATENCY_BUCKETS_S`
  (0.00012 s to 60 s, about doubling);
* ``modelyard_gateway_in_flight_requests`` (shadow copies included) and
  ``modelyard_gateway_queued_requests`` (held while no replica is ready): gauges;
* ``modelyard_gateway_rejected_total`` (503: held too long or too many held) and
  ``modelyard_gateway_timeouts_total`` (504);
* ``modelyard_gateway_shadow_requests_total{outcome}``: shadow copies by outcome,
  ``agreed``, ``disagreed``, ``failed`` (no answer in time) or ``dropped`` (never sent);
  copies still in flight have none yet.

Plus ``modelyard_gateway_up 1`` and the ``process_*`` metrics of the gateway process.
A deployment that left the route table disappears once the controller has read its last
stats.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from modelyard.gateway._routing import Routing
from modelyard.gateway.stats import LATENCY_BUCKETS_S

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Indices into ``LATENCY_BUCKETS_S`` of the exposed bounds (every fourth, ending at 60 s).
_EXPOSED = tuple(range((len(LATENCY_BUCKETS_S) - 1) % 4, len(LATENCY_BUCKETS_S), 4))
_LE = tuple(repr(LATENCY_BUCKETS_S[i]) for i in _EXPOSED)
_LABELS = ["deployment", "revision"]
_SHADOW_OUTCOMES = ("agreed", "disagreed", "failed", "dropped")


class GatewayMetrics:
    """Renders ``/-/metrics`` from the live routing state.

    Args:
        routing: The deployments and their counters.
        registry: Where the collectors are registered; a fresh one when None.
    """

    def __init__(self, routing: Routing, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.content_type = CONTENT_TYPE
        self._routing = routing
        self.registry.register(_Collector(self))
        ProcessCollector(registry=self.registry)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

    def families(self) -> Iterator[Metric]:
        """The current values as Prometheus metric families."""
        requests = CounterMetricFamily(
            "modelyard_gateway_requests",
            "Answers sent to callers, by HTTP status (499: the caller left first).",
            labels=[*_LABELS, "code"],
        )
        latency = HistogramMetricFamily(
            "modelyard_gateway_request_duration_seconds",
            "Time from a request's arrival at the gateway to its answer.",
            labels=_LABELS,
        )
        in_flight = GaugeMetricFamily(
            "modelyard_gateway_in_flight_requests",
            "Requests (shadow copies included) sent to a replica and not yet answered.",
            labels=_LABELS,
        )
        queued = GaugeMetricFamily(
            "modelyard_gateway_queued_requests",
            "Requests held while no replica is ready.",
            labels=_LABELS,
        )
        rejected = CounterMetricFamily(
            "modelyard_gateway_rejected",
            "Requests answered 503: held too long, or too many held.",
            labels=_LABELS,
        )
        timeouts = CounterMetricFamily(
            "modelyard_gateway_timeouts",
            "Requests answered 504: no answer within the deployment's request timeout.",
            labels=_LABELS,
        )
        shadow = CounterMetricFamily(
            "modelyard_gateway_shadow_requests",
            "Shadow copies by outcome: agreed, disagreed, failed or dropped (never sent).",
            labels=[*_LABELS, "outcome"],
        )
        for name, state in sorted(self._routing.deployments.items()):
            for number, revision in sorted(state.revisions.items()):
                stats = revision.stats
                labels = [name, str(number)]
                for code, count in sorted(stats.codes.items()):
                    requests.add_metric([*labels, str(code)], count)
                running = list(accumulate(stats.latency_counts))
                buckets: list[tuple[str, float]] = [
                    (le, running[i]) for le, i in zip(_LE, _EXPOSED, strict=True)
                ]
                buckets.append(("+Inf", running[-1]))
                latency.add_metric(labels, buckets, stats.latency_s_sum)
                in_flight.add_metric(labels, stats.in_flight)
                queued.add_metric(labels, stats.queued)
                rejected.add_metric(labels, stats.rejected)
                timeouts.add_metric(labels, stats.timeouts)
                if stats.shadow_sent or stats.shadow_dropped:
                    counts = (
                        stats.shadow_agreed,
                        stats.shadow_disagreed,
                        stats.shadow_failed,
                        stats.shadow_dropped,
                    )
                    for outcome, count in zip(_SHADOW_OUTCOMES, counts, strict=True):
                        shadow.add_metric([*labels, outcome], count)
        up = GaugeMetricFamily("modelyard_gateway_up", "1 while the gateway answers.")
        up.add_metric([], 1)
        yield from (up, requests, latency, in_flight, queued, rejected, timeouts, shadow)


class _Collector(Collector):
    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.families()
