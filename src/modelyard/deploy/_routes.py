"""Desired state → the gateway's route table (a pure function)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from modelyard.core.deployments import Deployment, Replica

SHADOW_QUEUE_LIMIT = 64


def build_route_table(
    deployments: Iterable[Deployment], replicas: Iterable[Replica]
) -> list[dict[str, Any]]:
    """Routes for the gateway: ready, non-standby replicas of revisions with traffic.

    A deployment whose weights do not sum to 100 (being deleted, or mid-change) is left
    out, so the gateway answers 404 for it rather than routing half of it.
    """
    ready: dict[int, list[Replica]] = defaultdict(list)
    for r in replicas:
        if r.state == "ready" and not r.standby:
            ready[r.deployment_id].append(r)
    table: list[dict[str, Any]] = []
    for dep in deployments:
        revisions: list[dict[str, Any]] = [
            {
                "revision": rev.number,
                "weight": rev.weight,
                "shadow_percent": rev.shadow_percent,
                "replicas": [
                    {"id": r.id, "host": "127.0.0.1", "port": r.port}
                    for r in ready[dep.id]
                    if r.revision == rev.number
                ],
            }
            for rev in dep.revisions
            if rev.weight > 0 or rev.shadow_percent > 0
        ]
        if sum(r["weight"] for r in revisions) != 100:
            continue
        route: dict[str, Any] = {
            "name": dep.name,
            "request_timeout_s": dep.config.request_timeout_s,
            "queue_limit": dep.config.queue_limit,
            "queue_timeout_s": dep.config.queue_timeout_s,
            "shadow_queue_limit": SHADOW_QUEUE_LIMIT,
            "revisions": revisions,
        }
        table.append(route)
    return table
