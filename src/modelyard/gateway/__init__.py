"""The deployment gateway: an HTTP/1.1 reverse proxy in front of replica processes.

``/<deployment>/<rest>`` goes to a ready replica of one of the deployment's revisions
(weighted), least outstanding requests first, with retries, holding while no replica is
ready, timeouts and shadow traffic. The controller pushes route tables and reads
cumulative stats through the control API under ``/-/``; Prometheus scrapes
``/-/metrics``. Every proxied request carries an ``x-request-id`` both ways, and, when
tracing is on, a span of its own. See ``docs/deployments.md`` and
``docs/monitoring-tracing.md``.

Only the pure pieces are imported here; the servers load when the gateway starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.gateway._balance import cumulative_weights, least_outstanding, weighted_index
from modelyard.gateway._compare import responses_agree
from modelyard.gateway._options import GatewayOptions
from modelyard.gateway._table import DeploymentRoute, ReplicaRoute, RevisionRoute, RouteTable
from modelyard.gateway.stats import LATENCY_BUCKETS_S, diff_buckets, quantile_from_buckets

if TYPE_CHECKING:
    from modelyard.gateway._gateway import Gateway
    from modelyard.gateway._run import run_gateway

__all__ = [
    "LATENCY_BUCKETS_S",
    "DeploymentRoute",
    "Gateway",
    "GatewayOptions",
    "ReplicaRoute",
    "RevisionRoute",
    "RouteTable",
    "cumulative_weights",
    "diff_buckets",
    "least_outstanding",
    "quantile_from_buckets",
    "responses_agree",
    "run_gateway",
    "weighted_index",
]


def __getattr__(name: str) -> Any:
    if name == "Gateway":
        from modelyard.gateway._gateway import Gateway

        return Gateway
    if name == "run_gateway":
        from modelyard.gateway._run import run_gateway

        return run_gateway
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
