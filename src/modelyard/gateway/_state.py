"""The live routing state built from a route table: deployments, revisions, replicas.

These are the gateway's mutable routing records (``Live*``), not the stored deployment
records of :mod:`modelyard.core.deployments`. They outlive table versions: a revision or
replica that stays in the table keeps its counters and connection pool. One that leaves
is marked inactive (no new requests) and kept until its stats were read once after it
left and nothing of it is in flight.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from modelyard.gateway._balance import cumulative_weights, least_outstanding, weighted_index
from modelyard.gateway._table import DeploymentRoute
from modelyard.gateway._upstream import ReplicaPool
from modelyard.gateway.stats import RevisionStats

if TYPE_CHECKING:
    from collections.abc import Container


class LiveReplica:
    """One replica process, its load and its connection pool."""

    __slots__ = (
        "active",
        "ejected_until_s",
        "failures",
        "host",
        "id",
        "in_flight",
        "pool",
        "port",
        "requests",
        "revision",
        "tag",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, id: str, host: str, port: int, revision: int
    ) -> None:
        self.id = id
        self.host = host
        self.port = port
        self.revision = revision
        self.in_flight = 0
        self.requests = 0
        self.failures = 0
        self.ejected_until_s = 0.0
        self.active = True
        self.pool = ReplicaPool(loop, host, port)
        # Written into every response this replica produced.
        self.tag = b"x-modelyard-revision: %d\r\nx-modelyard-replica: %s\r\n" % (
            revision,
            id.encode(),
        )

    @property
    def address(self) -> tuple[str, int, int]:
        """Host, port and revision: a replica listed with other values is a new one."""
        return (self.host, self.port, self.revision)

    def retire(self) -> None:
        """No longer routed: idle connections close now, busy ones after their response."""
        self.active = False
        self.pool.close()

    def to_json(self) -> dict[str, object]:
        """The stats API form."""
        return {"in_flight": self.in_flight, "requests": self.requests, "failures": self.failures}


class LiveRevision:
    """One revision: its share of traffic, its ready replicas and its counters."""

    __slots__ = (
        "active",
        "number",
        "replicas",
        "rotation",
        "shadow_percent",
        "stats",
        "tag",
        "weight",
    )

    def __init__(self, number: int, now_s: float) -> None:
        self.number = number
        self.weight = 0
        self.shadow_percent = 0.0
        self.replicas: list[LiveReplica] = []
        self.rotation = 0
        self.active = True
        self.stats = RevisionStats(now_s)
        self.tag = b"x-modelyard-revision: %d\r\n" % number

    def pick(self, now_s: float, tried: Container[str] | None = None) -> LiveReplica | None:
        """The least-loaded ready replica not in ``tried`` (ties rotate)."""
        replicas = self.replicas
        if len(replicas) == 1 and tried is None:
            return replicas[0]
        self.rotation += 1
        return least_outstanding(replicas, self.rotation, now_s, tried)


class LiveDeployment:
    """A deployment: its revisions, its limits and how many requests are held for it.

    The held requests themselves wait in the proxy (:class:`~modelyard.gateway._proxy.Proxy`).
    """

    __slots__ = (
        "_cumulative",
        "_routed",
        "active",
        "name",
        "queue_limit",
        "queue_timeout_s",
        "queued",
        "replicas",
        "request_timeout_s",
        "revisions",
        "shadow_outstanding",
        "shadow_queue_limit",
        "shadows",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.active = True
        self.revisions: dict[int, LiveRevision] = {}
        self.replicas: dict[str, LiveReplica] = {}
        self.queued = 0
        self.shadow_outstanding = 0
        self.shadows: list[LiveRevision] = []
        self.request_timeout_s = 60.0
        self.queue_limit = 100
        self.queue_timeout_s = 30.0
        self.shadow_queue_limit = 64
        self._routed: list[LiveRevision] = []
        self._cumulative: list[int] = []

    def update(self, route: DeploymentRoute, loop: asyncio.AbstractEventLoop, now_s: float) -> None:
        """Take a new table entry: new limits, weights and replica sets."""
        self.active = True
        self.request_timeout_s = route.request_timeout_s
        self.queue_limit = route.queue_limit
        self.queue_timeout_s = route.queue_timeout_s
        self.shadow_queue_limit = route.shadow_queue_limit
        listed: set[int] = set()
        wanted: dict[str, LiveReplica] = {}
        for entry in route.revisions:
            listed.add(entry.revision)
            revision = self.revisions.get(entry.revision)
            if revision is None:
                revision = self.revisions[entry.revision] = LiveRevision(entry.revision, now_s)
            revision.active = True
            revision.weight = entry.weight
            revision.shadow_percent = entry.shadow_percent
            revision.replicas = []
            for replica_route in entry.replicas:
                replica = self.replicas.get(replica_route.id)
                where = (replica_route.host, replica_route.port, entry.revision)
                if replica is None or not replica.active or replica.address != where:
                    if replica is not None and replica.active:
                        replica.retire()
                    replica = LiveReplica(loop, replica_route.id, *where)
                    self.replicas[replica.id] = replica
                revision.replicas.append(replica)
                wanted[replica.id] = replica
        for number, revision in self.revisions.items():
            if number not in listed:
                revision.active = False
                revision.weight = 0
                revision.shadow_percent = 0.0
                revision.replicas = []
        for replica in self.replicas.values():
            if replica.active and wanted.get(replica.id) is not replica:
                replica.retire()
        self._routed = [r for r in self.revisions.values() if r.active and r.weight > 0]
        self._cumulative = cumulative_weights([r.weight for r in self._routed])
        self.shadows = [r for r in self.revisions.values() if r.active and r.shadow_percent > 0]

    def remove(self) -> None:
        """The deployment left the table: route nothing more to it."""
        self.active = False
        self._routed = []
        self._cumulative = []
        self.shadows = []
        for revision in self.revisions.values():
            revision.active = False
            revision.weight = 0
            revision.replicas = []
        for replica in self.replicas.values():
            if replica.active:
                replica.retire()

    def pick_revision(self, point: float) -> LiveRevision:
        """The revision for a new request; ``point`` is uniform in [0, 1)."""
        routed = self._routed
        if len(routed) == 1:
            return routed[0]
        return routed[weighted_index(self._cumulative, point * self._cumulative[-1])]

    def prune(self) -> bool:
        """Drop inactive, idle revisions and replicas; True if the deployment can go too.

        Called after a stats read, so the last counters of what left were reported once.
        """
        self.revisions = {n: r for n, r in self.revisions.items() if r.active or not r.stats.idle}
        self.replicas = {i: r for i, r in self.replicas.items() if r.active or r.in_flight > 0}
        return not self.active and not self.revisions
