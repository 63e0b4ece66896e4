"""The current route table as live state, and the stats read that reports on it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from modelyard.gateway._state import LiveDeployment
from modelyard.gateway._table import RouteTable


class Routing:
    """Deployments by name, updated by route tables in version order.

    Args:
        loop: The gateway's event loop (for the replicas' connection pools).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.version = 0
        #: Every deployment with stats, including ones that left but were not yet read.
        self.deployments: dict[str, LiveDeployment] = {}
        #: What requests can reach, keyed by the path segment as sent.
        self.by_path: dict[bytes, LiveDeployment] = {}

    def apply(self, table: RouteTable, now_s: float) -> list[LiveDeployment]:
        """Take ``table`` unless it is older than the current one.

        Returns:
            The deployments whose routes were updated (held requests may now go), or
            ``[]`` if the table was ignored.
        """
        if table.version < self.version:
            return []
        self.version = table.version
        changed: list[LiveDeployment] = []
        for name, route in table.deployments.items():
            state = self.deployments.get(name)
            if state is None:
                state = self.deployments[name] = LiveDeployment(name)
            state.update(route, self._loop, now_s)
            changed.append(state)
        for name, state in self.deployments.items():
            if name not in table.deployments and state.active:
                state.remove()
                changed.append(state)
        self.by_path = {
            name.encode(): state for name, state in self.deployments.items() if state.active
        }
        return changed

    def held(self) -> Iterator[tuple[str, int, int]]:
        """(deployment, revision, queued) of every revision holding requests now."""
        for state in self.deployments.values():
            if state.queued:
                for revision in state.revisions.values():
                    if revision.stats.queued:
                        yield state.name, revision.number, revision.stats.queued

    def stats_json(self, now_s: float) -> dict[str, object]:
        """The body of ``GET /-/stats``; afterwards forget what left the table and is idle."""
        deployments: dict[str, object] = {}
        for name, state in self.deployments.items():
            deployments[name] = {
                "revisions": {
                    str(number): revision.stats.to_json(now_s)
                    for number, revision in sorted(state.revisions.items())
                },
                "replicas": {rid: replica.to_json() for rid, replica in state.replicas.items()},
            }
        body: dict[str, object] = {
            "now_s": now_s,
            "routes_version": self.version,
            "deployments": deployments,
        }
        for name in [n for n, state in self.deployments.items() if state.prune()]:
            del self.deployments[name]
        return body
