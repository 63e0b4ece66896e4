"""Replica state transitions, from what the backend reports.

Every replica has a record in the store; this module moves it along::

    launched -> starting -> ready -> draining -> stopped
                   |          |         |
                   v          v         v
                 failed     failed    stopped (exited while draining)

``starting`` becomes ``ready`` when its readiness check answers, ``failed`` when it
exits (with the reason the backend finds, usually its log's error) or is not ready
within the start timeout. A ready replica that exits has ``failed``. A ``draining``
replica is stopped once the gateway routes nothing to it and has no request on it (or
after its request timeout). Stops run on a small pool: a graceful stop waits up to
:data:`STOP_GRACE_S` for in-flight requests.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from modelyard.core.clock import Clock
from modelyard.core.deployments import Deployment, EventDraft, Replica, ReplicaState, Revision
from modelyard.core.errors import ModelyardError
from modelyard.deploy._backend import ReplicaBackend
from modelyard.deploy._pass import Pass
from modelyard.deploy.signals import GatewaySnapshot
from modelyard.store import DeploymentChange, DeploymentRepository

logger = logging.getLogger("modelyard.deploy")

STOP_GRACE_S = 30.0
# How long one readiness check of a starting replica may take (the loop runs every 20 ms).
READY_CHECK_S = 0.2
# A draining replica still busy is stopped this long after its request timeout.
DRAIN_SLACK_S = 5.0


def new_replica_id() -> str:
    return "r-" + secrets.token_hex(6)


def has_process(replica: Replica) -> bool:
    """Whether the record is of a process this backend runs: an orchestrator's replica
    is recorded with pid 0 and must never be probed, adopted or signalled (``kill(0)``
    would signal this server's own process group)."""
    return replica.pid > 0


def start_overdue(replica: Replica, now_ms: int, timeout_s: float) -> bool:
    """Whether a starting replica has had longer than ``timeout_s`` to become ready."""
    return now_ms - replica.started_at_ms > timeout_s * 1000


def drain_finished(
    since_s: float, now_s: float, *, unrouted: bool, idle: bool, request_timeout_s: float
) -> bool:
    """Whether a draining replica can stop: no route and no request left on it, or it has
    drained longer than any request may take."""
    return (unrouted and idle) or now_s - since_s > request_timeout_s + DRAIN_SLACK_S


def stopped_state(replica: Replica, reason: str) -> ReplicaState:
    """The state a stopped replica ends in: one stopped while starting has ``failed``,
    unless it was only no longer wanted."""
    if replica.state != "starting" or reason == "scaled down":
        return "stopped"
    return "failed"


class ReplicaStates:
    """Launches replicas through the backend and moves their records through their states.

    Args:
        repo: the deployments repository (replica records and events).
        backend: where replicas run.
        clock: ``now`` for records, ``monotonic`` for drain times.
        start_timeout_s: a replica not ready by then is stopped and marked failed.
    """

    def __init__(
        self,
        repo: DeploymentRepository,
        backend: ReplicaBackend,
        clock: Clock,
        *,
        start_timeout_s: float,
    ) -> None:
        self._repo = repo
        self._backend = backend
        self._clock = clock
        self._start_timeout_s = start_timeout_s
        self._draining: dict[str, float] = {}  # replica id -> when it began draining
        self._stopping: set[str] = set()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="replica-stop")
        # Some replica is starting: the controller checks again soon.
        self.starting = False

    def is_stopping(self, replica_id: str) -> bool:
        """Whether a stop of the replica is under way (it gets no route and no check)."""
        return replica_id in self._stopping

    def active_count(self) -> int:
        """Replicas starting, ready or draining, less those being stopped."""
        mine = [r for r in self._repo.replicas(active_only=True) if has_process(r)]
        return len(mine) - len(self._stopping)

    # --- adoption and checks --------------------------------------------------------

    def adopt(self) -> None:
        """After a (re)start: keep replicas that are alive and ready, forget the rest."""
        for r in filter(has_process, self._repo.replicas(active_only=True)):
            if self._backend.alive(r) and self._backend.ready(r):
                if r.state == "starting":
                    self._repo.update_replica(r.id, state="ready", ready_at_ms=self._now_ms())
                logger.info("adopted replica %s (pid %d, port %d)", r.id, r.pid, r.port)
                continue
            self._repo.update_replica(
                r.id,
                state="stopped",
                stopped_at_ms=self._now_ms(),
                exit_reason="lost while the server was down",
            )
            gone = EventDraft("replica", f"replica {r.id} was gone after a restart", r.revision)
            self._repo.add_events(r.deployment_id, [gone])

    def check(
        self,
        dep: Deployment,
        replicas: list[Replica],
        snapshot: GatewaySnapshot | None,
        unrouted: Callable[[str], bool],
        p: Pass,
    ) -> list[Replica]:
        """Check each replica once; returns those still active, as they are now.

        ``unrouted(replica_id)`` says whether the gateway has applied a route table
        without the replica, so a draining one can stop.
        """
        live: list[Replica] = []
        now_ms = self._now_ms()
        for r in replicas:
            if r.id in self._stopping:
                live.append(r)
                continue
            alive = self._backend.alive(r)
            if r.state == "starting":
                checked = self._check_starting(r, alive, now_ms, p)
                if checked is None:
                    continue
                r = checked
            elif not alive:
                self._exited(r, p)
                continue
            elif r.state == "draining":
                self._maybe_stop_drained(dep, r, snapshot, unrouted)
            live.append(r)
        return live

    def _check_starting(self, r: Replica, alive: bool, now_ms: int, p: Pass) -> Replica | None:
        """A starting replica that became ready, or is still starting; None if it failed."""
        if not alive:
            reason = self._backend.failure_reason(r)
            self.mark(r, "failed", f"exited while starting: {reason}")
            p.failed_revisions[r.revision] = reason
            message = f"replica {r.id} failed: {reason}"
            p.events.append(EventDraft("replica", message, r.revision, {"replica": r.id}))
            return None
        if self._backend.ready(r, timeout_s=READY_CHECK_S):
            self._repo.update_replica(r.id, state="ready", ready_at_ms=now_ms)
            took_s = (now_ms - r.started_at_ms) / 1000
            data: dict[str, Any] = {
                "replica": r.id,
                "start_s": took_s,
                "mode": r.mode,
                "standby": r.standby,
            }
            message = f"replica {r.id} ready in {took_s:.2f}s"
            p.events.append(EventDraft("replica", message, r.revision, data))
            return replace(r, state="ready", ready_at_ms=now_ms)
        if start_overdue(r, now_ms, self._start_timeout_s):
            reason = f"not ready within {self._start_timeout_s:g}s"
            self.stop_async(r, reason)
            p.failed_revisions[r.revision] = reason
            return None
        self.starting = True
        return r

    def _exited(self, r: Replica, p: Pass) -> None:
        """A ready replica that exited has failed; a draining one has stopped."""
        if r.state == "ready":
            self.mark(r, "failed", "exited unexpectedly")
            message = f"replica {r.id} exited unexpectedly"
            data = {"replica": r.id, "pid": r.pid}
            p.events.append(EventDraft("replica", message, r.revision, data))
        else:
            self.mark(r, "stopped", "exited while draining")
        self._draining.pop(r.id, None)

    def _maybe_stop_drained(
        self,
        dep: Deployment,
        r: Replica,
        snapshot: GatewaySnapshot | None,
        unrouted: Callable[[str], bool],
    ) -> None:
        since_s = self._draining.setdefault(r.id, self._clock.monotonic())
        idle = snapshot is None or snapshot.replica_in_flight.get(r.id, 0) == 0
        finished = drain_finished(
            since_s,
            self._clock.monotonic(),
            unrouted=unrouted(r.id),
            idle=idle,
            request_timeout_s=dep.config.request_timeout_s,
        )
        if finished:
            self.stop_async(r, "scaled down")

    # --- launch, promote, drain -----------------------------------------------------

    def launch(self, dep: Deployment, rev: Revision, *, standby: bool, p: Pass) -> bool:
        """Start one replica of ``rev`` and record it ``starting``; False if none started.

        A revision the backend cannot prepare fails (if still pending); a launch that
        fails is an event, and a later pass tries again.
        """
        try:
            self._backend.prepare(dep.project, rev)
        except ModelyardError as exc:
            p.failed_revisions[rev.number] = str(exc)
            if rev.state == "pending":
                failed = EventDraft("revision", f"revision {rev.number} failed: {exc}", rev.number)
                change = DeploymentChange(
                    revision_states={rev.number: ("failed", str(exc))}, events=[failed]
                )
                self._repo.change(dep.id, change)
            return False
        rid = new_replica_id()
        started_ms = self._now_ms()
        try:
            launched = self._backend.launch(rid, dep, rev)
        except (OSError, ModelyardError, RuntimeError) as exc:
            message = f"could not start a replica: {exc}"
            p.events.append(EventDraft("replica", message, rev.number))
            return False
        s = rev.settings
        record = Replica(
            id=rid,
            deployment_id=dep.id,
            revision=rev.number,
            pid=launched.pid,
            port=launched.port,
            state="starting",
            mode=launched.mode,
            standby=standby,
            cpu=s.cpu,
            memory_mb=s.memory_mb,
            started_at_ms=started_ms,
            ready_at_ms=None,
            stopped_at_ms=None,
            exit_reason="",
            gpu=s.gpu,
        )
        self._repo.add_replica(record)
        self.starting = True
        data: dict[str, Any] = {
            "replica": rid,
            "pid": launched.pid,
            "port": launched.port,
            "mode": launched.mode,
            "launch_s": round(self._now_ms() / 1000 - started_ms / 1000, 4),
        }
        what = "standby" if standby else "replica"
        message = f"{what} {rid} starting on port {launched.port}"
        p.events.append(EventDraft("replica", message, rev.number, data))
        return True

    def promote(self, standby: Replica, p: Pass) -> None:
        """A ready standby replica starts taking traffic."""
        self._repo.update_replica(standby.id, standby=False)
        message = f"standby {standby.id} promoted"
        p.events.append(EventDraft("replica", message, standby.revision, {"replica": standby.id}))

    def drain(self, r: Replica, p: Pass) -> None:
        """A ready replica gets no new request; :meth:`check` stops it once it is idle."""
        self._repo.update_replica(r.id, state="draining")
        self._draining[r.id] = self._clock.monotonic()
        message = f"replica {r.id} draining"
        p.events.append(EventDraft("replica", message, r.revision, {"replica": r.id}))

    # --- stopping -------------------------------------------------------------------

    def stop_async(self, r: Replica, reason: str) -> None:
        """Stop the replica on the pool; it is left out of routes and checks meanwhile."""
        self._stopping.add(r.id)

        def done() -> None:
            try:
                self.stop_now(r, reason)
            finally:
                self._stopping.discard(r.id)
                self._draining.pop(r.id, None)

        self._pool.submit(done)

    def stop_now(self, r: Replica, reason: str) -> None:
        """Stop the replica (blocking) and record how it ended."""
        graceful = self._backend.stop(r, grace_s=STOP_GRACE_S)
        why = reason if graceful else f"{reason} (killed after {STOP_GRACE_S:g}s)"
        self.mark(r, stopped_state(r, reason), why)

    def stop_all(self, reason: str) -> None:
        """Stop every active replica at once (server stop), waiting for all of them."""
        replicas = [r for r in self._repo.replicas(active_only=True) if has_process(r)]
        list(self._pool.map(lambda r: self.stop_now(r, reason), replicas))

    def close(self) -> None:
        """Wait for the stops under way."""
        self._pool.shutdown(wait=True)

    def mark(self, r: Replica, state: ReplicaState, reason: str) -> None:
        """Record that the replica ended, in ``state``, and why."""
        self._repo.update_replica(
            r.id, state=state, stopped_at_ms=self._now_ms(), exit_reason=reason
        )

    def _now_ms(self) -> int:
        return int(self._clock.now() * 1000)
