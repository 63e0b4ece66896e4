"""The deployment controller: reconciles replicas towards the desired state.

One thread inside ``modelyard server``. Every pass (``loop_s``, faster while a replica
is starting, at once when the gateway holds a request for a revision without replicas):

1. reads desired state from the store and the gateway's counters;
2. checks replicas (:mod:`~modelyard.deploy._health`): starting → ready, dead →
   failed/stopped with the reason the backend finds, draining → stopped once the
   gateway has no request on them;
3. marks pending revisions ready or failed, advances rollouts
   (:mod:`~modelyard.deploy._rollouts`);
4. asks each serving revision's autoscaler for its replica count, and starts or drains
   replicas to match within the quota and the global cap
   (:mod:`~modelyard.deploy._scaling`);
5. writes the pass's events, reports shadows, and pushes the route table to the gateway.

Replicas run wherever the :class:`~modelyard.deploy._backend.ReplicaBackend` puts them;
nothing here knows they are processes. Every decision that changes something, and a
heartbeat of the others, is an event.

Only deployments on the ``local`` backend are reconciled here: Kubernetes and Ray Serve
deployments belong to :mod:`~modelyard.deploy._orchestrated`, get no gateway route, and
their replica records (pid 0) are never checked, adopted or stopped as processes.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from modelyard.core.clock import Clock, SystemClock
from modelyard.core.deployments import Deployment, EventDraft, Replica
from modelyard.core.errors import ModelyardError
from modelyard.deploy._backend import ReplicaBackend
from modelyard.deploy._gateway_link import GatewayLink
from modelyard.deploy._health import ReplicaStates
from modelyard.deploy._pass import Pass
from modelyard.deploy._rollouts import Rollouts, revision_counters
from modelyard.deploy._routes import build_route_table
from modelyard.deploy._scaling import Autoscalers, Capacity
from modelyard.deploy.signals import GatewaySnapshot
from modelyard.store import MetadataStore

logger = logging.getLogger("modelyard.deploy")

ROUTES_REFRESH_S = 5.0
# Passes without gateway stats (at least 0.25 s apart) before its process is checked.
GATEWAY_MISSES_BEFORE_RESTART = 8
# The pass interval while a replica is starting.
STARTING_LOOP_S = 0.02


class DeploymentController:
    """Reconciles every deployment's replicas; see the module docstring.

    Args:
        store: the metadata store.
        backend: where replicas run (``LocalProcessBackend`` in ``modelyard server``).
        gateway: the gateway link, or None to run without one (tests of the loop).
        clock: time source (``now`` for records, ``monotonic`` for decisions).
        max_total_replicas: the global cap on replicas (``MODELYARD_MAX_REPLICAS``).
        loop_s: the pass interval when nothing is starting.
        start_timeout_s: a replica not ready by then is stopped and marked failed.
    """

    def __init__(
        self,
        store: MetadataStore,
        backend: ReplicaBackend,
        gateway: GatewayLink | None,
        *,
        clock: Clock | None = None,
        max_total_replicas: int = 4,
        loop_s: float = 0.25,
        start_timeout_s: float = 120.0,
    ) -> None:
        self._repo = store.deployments
        self._gateway = gateway
        self._clock = clock or SystemClock()
        self._loop_s = loop_s
        self._replicas = ReplicaStates(
            self._repo, backend, self._clock, start_timeout_s=start_timeout_s
        )
        self._autoscalers = Autoscalers(self._clock)
        self._capacity = Capacity(
            store, self._replicas, self._clock, max_total_replicas=max_total_replicas
        )
        self._rollouts = Rollouts(self._repo, self._clock)
        self._wakes: set[tuple[str, int]] = set()
        self._wake_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Wall-clock based, so a gateway adopted after a restart sees newer versions.
        self._routes_version = int(self._clock.now() * 1000)
        self._pushed_table: list[Any] | None = None
        self._pushed_at_s = -1e18
        self._pushed_version = 0
        self._pushed_replicas: set[str] = set()
        self._gateway_routes_version = 0
        self._gateway_misses = 0

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Adopt live replicas, then run the loop in a thread."""
        self.adopt()
        if self._gateway is not None:
            self._gateway.watch_wakeups(self.wake, self._stop)
        self._thread = threading.Thread(target=self._run, name="deploy-controller", daemon=True)
        self._thread.start()

    def stop(self, *, stop_replicas: bool = True) -> None:
        """Stop the loop; with ``stop_replicas`` stop every replica (gracefully) too."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if stop_replicas:
            self._replicas.stop_all("server stopped")
        self._replicas.close()

    def wake(self, revisions: Iterable[tuple[str, int]]) -> None:
        """The gateway holds requests for these (deployment, revision): decide now."""
        with self._wake_lock:
            self._wakes.update(revisions)
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the loop must survive anything one pass hits
                logger.exception("deployment controller pass failed")
            self._wake.wait(STARTING_LOOP_S if self._replicas.starting else self._loop_s)
            self._wake.clear()

    def adopt(self) -> None:
        """After a (re)start: keep replicas that are alive and ready, forget the rest."""
        self._replicas.adopt()

    # --- one pass -------------------------------------------------------------------

    def run_once(self) -> None:
        """One reconcile pass over every deployment."""
        deployments = self._repo.list_all()
        by_dep: dict[int, list[Replica]] = defaultdict(list)
        for r in self._repo.replicas(active_only=True):
            by_dep[r.deployment_id].append(r)
        snapshot = self._gateway_stats()
        with self._wake_lock:
            wakes, self._wakes = self._wakes, set()
        self._replicas.starting = False
        for dep in local_deployments(deployments):
            try:
                self._reconcile(dep, by_dep.get(dep.id, []), snapshot, wakes)
            except ModelyardError as exc:
                logger.warning("deployment %s: %s", dep.name, exc)
            except Exception:  # one deployment's bug must not stop the others
                logger.exception("reconciling deployment %s failed", dep.name)
        self._push_routes()

    def _reconcile(
        self,
        dep: Deployment,
        replicas: list[Replica],
        snapshot: GatewaySnapshot | None,
        wakes: set[tuple[str, int]],
    ) -> None:
        p = Pass()
        replicas = self._replicas.check(dep, replicas, snapshot, self._unrouted, p)
        dep = self._rollouts.revision_states(dep, replicas, p)
        counters = revision_counters(dep, snapshot)
        dep, pins = self._rollouts.advance(dep, replicas, counters)
        desired = self._autoscalers.desired(dep, replicas, counters, pins, wakes, p)
        self._capacity.apply(dep, replicas, desired, snapshot, p)
        self._rollouts.shadow_report(dep, counters, p)
        self._repo.add_events(dep.id, p.events)
        if dep.status == "deleting" and not self._repo.replicas(dep.id, active_only=True):
            self._repo.add_events(dep.id, [EventDraft("deployment", "deleted: no replica left")])
            self._repo.purge(dep.id)
            self._autoscalers.forget(dep.id)

    # --- the gateway ----------------------------------------------------------------

    def _gateway_stats(self) -> GatewaySnapshot | None:
        """The gateway's counters; a gateway silent for several passes is restarted."""
        if self._gateway is None:
            return None
        snapshot = self._gateway.stats()
        if snapshot is not None:
            self._gateway_routes_version = snapshot.routes_version
            self._gateway_misses = 0
            return snapshot
        self._gateway_misses += 1
        if self._gateway_misses >= GATEWAY_MISSES_BEFORE_RESTART:
            self._gateway_misses = 0
            self._restart_gateway()
        return None

    def _restart_gateway(self) -> None:
        """A gateway that died is started again and given the whole route table."""
        if self._gateway is None:
            return
        try:
            restarted = self._gateway.ensure_running()
        except ModelyardError as exc:
            logger.error("could not restart the gateway: %s", exc)
            return
        if restarted:
            self._pushed_table = None  # push everything to the new process
            message = "the gateway process was gone and has been restarted"
            for dep in local_deployments(self._repo.list_all(include_deleting=False)):
                self._repo.add_events(dep.id, [EventDraft("gateway", message)])

    def _unrouted(self, replica_id: str) -> bool:
        """Whether the last table pushed leaves the replica out and the gateway applied it."""
        return self._gateway is None or (
            self._pushed_version > 0
            and replica_id not in self._pushed_replicas
            and self._gateway_routes_version >= self._pushed_version
        )

    def route_table(self) -> list[dict[str, Any]]:
        """The gateway's routes, from the store (see :func:`build_route_table`)."""
        routable = [
            r for r in self._repo.replicas(active_only=True) if not self._replicas.is_stopping(r.id)
        ]
        deployments = local_deployments(self._repo.list_all(include_deleting=False))
        return build_route_table(deployments, routable)

    def _push_routes(self) -> None:
        if self._gateway is None:
            return
        table = self.route_table()
        now = self._clock.monotonic()
        if table == self._pushed_table and now - self._pushed_at_s < ROUTES_REFRESH_S:
            return
        if table != self._pushed_table:
            self._routes_version += 1
        if self._gateway.push_routes({"version": self._routes_version, "deployments": table}):
            self._pushed_table = table
            self._pushed_at_s = now
            self._pushed_version = self._routes_version
            self._pushed_replicas = {
                r["id"] for d in table for rev in d["revisions"] for r in rev["replicas"]
            }


def local_deployments(deployments: Iterable[Deployment]) -> list[Deployment]:
    """The deployments whose replicas are local processes behind the gateway (the
    others are the orchestrated controller's)."""
    return [d for d in deployments if d.backend.kind == "local"]
