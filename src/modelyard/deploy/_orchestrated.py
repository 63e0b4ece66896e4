"""The orchestrated controller: deployments that Kubernetes or Ray Serve run.

One thread inside ``modelyard server``, beside the local controller
(:mod:`~modelyard.deploy._reconcile`, which skips these deployments). Every pass
(``loop_s``) over each deployment whose backend is not ``local``:

1. ``observe`` what runs; the replicas become the deployment's replica records (pid 0,
   port 0, mode ``k8s`` or ``ray``), a pending revision becomes ready when a replica of
   it is ready, or failed when every replica of it failed with a reason;
2. steps an active rollout (:func:`~modelyard.deploy._orchestrated_rollout.orchestrated_step`:
   canary weights by replica health, rolling by the orchestrator's own rollout);
3. with ``--autoscaler modelyard``, ticks each serving revision's autoscaler on the
   observed load (:class:`~modelyard.deploy._orchestrated_scaling.OrchestratedScalers`,
   the local controller's policies fed from ``Observed.load``);
4. derives the targets from the desired state and those counts
   (:func:`~modelyard.deploy._orchestrated_targets.targets_for`) and calls ``apply`` when
   they (or the deployment's generation) changed since the last successful apply;
5. a deployment being deleted is ``remove``d from the orchestrator, then purged.

The orchestrator is reached only through
:class:`~modelyard.deploy._backend.OrchestratorBackend`, one per backend spec, made by the
factory of its kind (:func:`~modelyard.deploy._orchestrated_calls.default_backend_factories`
imports them lazily). A call that fails is retried with back-off and recorded as one
``orchestrator`` event per distinct error, not one per pass
(:func:`~modelyard.deploy._orchestrated_calls.attempt`). Replica records are matched to
the orchestrator's replicas by :func:`~modelyard.deploy._orchestrated_replicas.record_id`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from modelyard.core.backends import BackendSpec
from modelyard.core.clock import Clock, SystemClock
from modelyard.core.deployments import Deployment, EventDraft, Replica
from modelyard.core.errors import Conflict, ModelyardError, Unavailable
from modelyard.deploy._backend import Observed, OrchestratorBackend, RevisionTarget
from modelyard.deploy._orchestrated_calls import (
    FAILED,
    BackendFactory,
    Failed,
    Trouble,
    attempt,
)
from modelyard.deploy._orchestrated_replicas import (
    canary_failure,
    failed_revisions,
    record_id,
    replica_changes,
)
from modelyard.deploy._orchestrated_rollout import OrchestratedView, orchestrated_step
from modelyard.deploy._orchestrated_scaling import OrchestratedScalers
from modelyard.deploy._orchestrated_targets import (
    describe_targets,
    modelyard_scales,
    takes_all_traffic,
    targets_for,
)
from modelyard.deploy._pass import Pass
from modelyard.deploy._rollouts import Rollouts
from modelyard.store import DeploymentChange, MetadataStore

logger = logging.getLogger("modelyard.deploy")

_T = TypeVar("_T")

# Orchestrators are slower to change and to ask than local processes.
LOOP_S = 2.0


@dataclass
class _Track:
    """What the controller remembers of one deployment between passes."""

    dep_id: int
    applied: tuple[int, tuple[RevisionTarget, ...]] | None = None
    troubles: dict[str, Trouble] = field(default_factory=dict)
    ended: set[str] | None = None  # ids of its ended records the orchestrator still reports
    endpoint: str | None = None

    @property
    def applied_targets(self) -> tuple[RevisionTarget, ...]:
        return self.applied[1] if self.applied is not None else ()


class OrchestratedController:
    """Reconciles deployments run by orchestrators; see the module docstring.

    Args:
        store: the metadata store.
        factories: backend kind → a callable building an
            :class:`~modelyard.deploy._backend.OrchestratorBackend` from a deployment's
            :class:`~modelyard.core.backends.BackendSpec`
            (:func:`~modelyard.deploy._orchestrated_calls.default_backend_factories` in
            ``modelyard server``).
        clock: ``now`` for records and rollout steps, ``monotonic`` for retries and
            for the autoscalers' ticks.
        loop_s: the pass interval.
    """

    def __init__(
        self,
        store: MetadataStore,
        factories: Mapping[str, BackendFactory],
        *,
        clock: Clock | None = None,
        loop_s: float = LOOP_S,
    ) -> None:
        self._repo = store.deployments
        self._factories = dict(factories)
        self._clock = clock or SystemClock()
        self._loop_s = loop_s
        self._rollouts = Rollouts(self._repo, self._clock)
        self._scalers = OrchestratedScalers(self._clock)
        self._backends: dict[str, OrchestratorBackend] = {}  # by backend kind
        self._tracks: dict[int, _Track] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Run the loop in a thread."""
        self._thread = threading.Thread(target=self._run, name="deploy-orchestrated", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and close the backends; what the orchestrators run keeps running."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for backend in self._backends.values():
            try:
                backend.close()
            except Exception:  # one backend's failure must not keep the others open
                logger.exception("closing an orchestrator backend failed")
        self._backends.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the loop must survive anything one pass hits
                logger.exception("orchestrated controller pass failed")
            self._stop.wait(self._loop_s)

    # --- one pass -------------------------------------------------------------------

    def run_once(self) -> None:
        """One pass over every deployment an orchestrator runs."""
        deployments = orchestrated_deployments(self._repo.list_all())
        for gone in set(self._tracks) - {d.id for d in deployments}:
            del self._tracks[gone]
            self._scalers.forget(gone)
        for dep in deployments:
            track = self._tracks.setdefault(dep.id, _Track(dep.id))
            p = Pass()
            try:
                self._reconcile(dep, track, p)
            except Conflict:
                pass  # the desired state changed meanwhile: the next pass sees it
            except ModelyardError as exc:
                logger.warning("deployment %s: %s", dep.name, exc)
            except Exception:  # one deployment's bug must not stop the others
                logger.exception("reconciling deployment %s failed", dep.name)
            finally:
                self._write_events(dep, p)

    def _reconcile(self, dep: Deployment, track: _Track, p: Pass) -> None:
        backend = self._backend_for(dep, track, p)
        if backend is None:
            return
        if dep.status == "deleting":
            self._delete(dep, backend, track, p)
            return
        observed = self._call(track, "observe", p, lambda: backend.observe(dep))
        records: list[Replica] | None = None
        if isinstance(observed, Observed):
            dep, records = self._observed(dep, observed, track, p)
        decided: dict[int, int] = {}
        if modelyard_scales(dep.backend, dep.config.min_replicas):
            load = observed.load if isinstance(observed, Observed) else None
            decided = self._scalers.decide(dep, records, load, p)
        targets = targets_for(dep, decided=decided)
        key = (dep.generation, targets)
        if track.applied != key:
            result = self._call(track, "apply", p, lambda: backend.apply(dep, targets), key)
            if result is not FAILED:
                track.applied = key
                message = f"applied to {dep.backend.kind}: {describe_targets(targets)}"
                p.events.append(EventDraft("orchestrator", message, None, _targets_data(targets)))

    def _observed(
        self, dep: Deployment, observed: Observed, track: _Track, p: Pass
    ) -> tuple[Deployment, list[Replica]]:
        """Records, revision states and the rollout step from one observation; the
        deployment after them, and its active replica records."""
        live = self._sync_replicas(dep, observed, track, p)
        if observed.endpoint and observed.endpoint != track.endpoint:
            track.endpoint = observed.endpoint
            p.events.append(EventDraft("orchestrator", f"serving at {observed.endpoint}"))
        p.failed_revisions.update(failed_revisions(dep, observed.replicas))
        dep = self._rollouts.revision_states(dep, live, p)
        return self._advance_rollout(dep, observed, track), live

    # --- replica records ------------------------------------------------------------

    def _sync_replicas(
        self, dep: Deployment, observed: Observed, track: _Track, p: Pass
    ) -> list[Replica]:
        """Make the records match what the orchestrator reports; returns the active ones."""
        active = self._repo.replicas(dep.id, active_only=True)
        if track.ended is None:
            track.ended = {
                r.id for r in self._repo.replicas(dep.id, active_only=False) if not r.active
            }
        changes = replica_changes(dep, active, track.ended, observed, self._now_ms())
        for record in changes.added:
            try:
                self._repo.add_replica(record)
            except ModelyardError as exc:
                self._record_exists(dep, record, exc, p)
        for rid, values in changes.updated:
            self._repo.update_replica(rid, **values)
        p.events.extend(changes.events)
        # Only ended records the orchestrator still reports can come back (a pod out of
        # CrashLoopBackOff); names are not reused, so the others are forgotten.
        reported = {record_id(o.id) for o in observed.replicas}
        track.ended = ((track.ended | changes.ended) - changes.reopened) & reported
        return list(changes.live)

    def _record_exists(
        self, dep: Deployment, record: Replica, exc: ModelyardError, p: Pass
    ) -> None:
        """A new replica's id has a record already: this deployment's own, ended when an
        observation left the replica out (it is reopened), or another deployment's (an
        event: the name clashes)."""
        mine = {r.id for r in self._repo.replicas(dep.id, active_only=False)}
        if record.id not in mine:
            message = f"cannot record replica {record.id}: {exc}"
            p.events.append(EventDraft("replica", message, record.revision))
            return
        self._repo.update_replica(
            record.id,
            state=record.state,
            ready_at_ms=record.ready_at_ms,
            stopped_at_ms=record.stopped_at_ms,
            exit_reason=record.exit_reason,
        )

    # --- rollouts -------------------------------------------------------------------

    def _advance_rollout(self, dep: Deployment, observed: Observed, track: _Track) -> Deployment:
        ro = dep.rollout
        if ro is None or not ro.active:
            return dep
        target = dep.revision(ro.target)
        if target is None:
            return dep
        view = OrchestratedView(
            now_ms=self._now_ms(),
            target_state=target.state,
            target_error=target.error,
            target_ready=sum(
                1 for o in observed.replicas if o.revision == ro.target and o.state == "ready"
            ),
            canary_failure=canary_failure(ro, observed.replicas),
            rolled_out=observed.rolled_out,
            target_applied=takes_all_traffic(track.applied_targets, ro.target),
        )
        step = orchestrated_step(ro, view, dep.backend.kind)
        if step.rollout == ro and step.weights is None and step.message is None:
            return dep
        change = DeploymentChange(
            rollout=step.rollout, weights=step.weights, expect_generation=dep.generation
        )
        if step.promote:
            change.stable_revision = ro.target
            change.previous_stable = ro.stable
        if step.message is not None:
            data: dict[str, Any] = {
                "phase": step.rollout.phase,
                "weights": step.weights,
                "gate": "replica health",
                "rolled_out": observed.rolled_out,
            }
            change.events = [EventDraft("rollout", step.message, ro.target, data)]
        new, _ = self._repo.change(dep.id, change)
        return new

    # --- deletion, backends -----------------------------------------------------------

    def _delete(
        self, dep: Deployment, backend: OrchestratorBackend, track: _Track, p: Pass
    ) -> None:
        """Remove the deployment from the orchestrator; once that worked, end its replica
        records and purge it."""
        if self._call(track, "remove", p, lambda: backend.remove(dep)) is FAILED:
            return
        reason = "deployment deleted"
        for r in self._repo.replicas(dep.id, active_only=True):
            self._repo.update_replica(
                r.id, state="stopped", stopped_at_ms=self._now_ms(), exit_reason=reason
            )
        p.events.append(EventDraft("deployment", f"deleted: removed from {dep.backend.kind}"))
        self._write_events(dep, p)
        self._repo.purge(dep.id)
        self._tracks.pop(dep.id, None)
        self._scalers.forget(dep.id)

    def _backend_for(self, dep: Deployment, track: _Track, p: Pass) -> OrchestratorBackend | None:
        """The backend of the deployment's kind, built on first use by the kind's
        factory (one per kind: a backend reads each deployment's spec from it)."""
        spec = dep.backend
        backend = self._backends.get(spec.kind)
        if backend is not None:
            return backend
        factory = self._factories.get(spec.kind)

        def build() -> OrchestratorBackend:
            if factory is None:
                raise Unavailable(f"this server has no {spec.kind} backend")
            return factory(spec)

        made = self._call(track, "backend", p, build)
        if isinstance(made, Failed):
            return None
        self._backends[spec.kind] = made
        return made

    def _call(
        self,
        track: _Track,
        op: str,
        p: Pass,
        fn: Callable[[], _T],
        key: object = None,
    ) -> _T | Failed:
        """``fn()`` under :func:`~modelyard.deploy._orchestrated_calls.attempt`'s rules
        (back-off, one event per distinct error)."""
        return attempt(track.troubles, op, self._clock.monotonic(), p.events, fn, key)

    def _write_events(self, dep: Deployment, p: Pass) -> None:
        if p.events:
            self._repo.add_events(dep.id, p.events)
            p.events = []

    def _now_ms(self) -> int:
        return int(self._clock.now() * 1000)


def revision_targets(dep: Deployment, spec: BackendSpec) -> tuple[RevisionTarget, ...]:
    """What ``dep`` would run on the backend ``spec``: the targets this controller
    applies (:func:`~modelyard.deploy._orchestrated_targets.targets_for`), for
    ``deploy render`` to turn into manifests without a cluster."""
    return targets_for(dep, spec)


def orchestrated_deployments(deployments: list[Deployment]) -> list[Deployment]:
    """The deployments this controller reconciles: those not on the local backend."""
    return [d for d in deployments if d.backend.kind != "local"]


def _targets_data(targets: tuple[RevisionTarget, ...]) -> dict[str, Any]:
    return {
        "targets": [
            {
                "revision": t.revision.number,
                "weight": t.weight,
                "min_replicas": t.min_replicas,
                "max_replicas": t.max_replicas,
                "replicas": t.replicas,
            }
            for t in targets
        ]
    }
