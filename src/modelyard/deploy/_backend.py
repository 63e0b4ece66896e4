"""What the deployment controller needs of the place replicas run: the backend contract.

The controller (:mod:`modelyard.deploy._reconcile`) decides which replicas should exist
and records every replica in the metadata store; a :class:`ReplicaBackend` makes them
exist. Local processes are one backend (:class:`~modelyard.deploy._local_backend.
LocalProcessBackend`); Kubernetes or Ray Serve would be others. The controller calls
nothing process-specific itself, so a new backend implements this protocol and nothing
in the controller changes.

Replicas are identified by their :class:`~modelyard.core.deployments.Replica` record: a
backend reads what it stored at launch (``pid``, ``port``, ``mode``) back from it, so a
restarted server can adopt replicas a previous one launched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from modelyard.core.deployments import Deployment, Replica, ReplicaState, Revision

if TYPE_CHECKING:  # only a type here: signals pulls in the autoscale package (numpy)
    from modelyard.deploy.signals import RevisionCounters


@dataclass(frozen=True)
class Launched:
    """A replica the backend has just started (not ready yet, perhaps not even alive).

    Attributes:
        pid: The backend's handle for it (a process id for local processes); stored in
            the replica record and given back to :meth:`ReplicaBackend.alive` and
            :meth:`ReplicaBackend.stop` through it.
        port: The port it serves on; the gateway routes to it.
        mode: How it was started (``fork`` or ``spawn`` locally), for events and records.
    """

    pid: int
    port: int
    mode: str


class ReplicaBackend(Protocol):
    """Starts, checks and stops the replicas of deployment revisions.

    Calls come from the controller thread, except :meth:`stop`, which runs on a small
    pool (several replicas drain at once) and at server stop: implementations are
    thread-safe.
    """

    def prepare(self, project: str, revision: Revision) -> None:
        """Make the revision's model available to its replicas (fetch and verify it).

        Called before every launch; a backend caches what it fetched.

        Raises:
            ModelyardError: the revision can never run here (model version gone, a file
                that does not match its digest); the controller fails a pending revision.
        """
        ...

    def launch(self, replica_id: str, deployment: Deployment, revision: Revision) -> Launched:
        """Start one replica of ``revision`` and return at once, without waiting for it.

        ``deployment.config.launch`` is the mode the user asked for; the backend may fall
        back to another one and says which in :attr:`Launched.mode`.

        Raises:
            ModelyardError, OSError, RuntimeError: this replica could not start; the
                controller records an event and tries again on a later pass.
        """
        ...

    def alive(self, replica: Replica) -> bool:
        """Whether the replica still runs (False once it exited, was killed or is gone)."""
        ...

    def ready(self, replica: Replica, *, timeout_s: float = 0.5) -> bool:
        """Whether the replica answers its readiness check within ``timeout_s``."""
        ...

    def stop(self, replica: Replica, *, grace_s: float) -> bool:
        """Stop the replica: gracefully (it finishes in-flight requests), forced after
        ``grace_s``. Blocks until it is gone.

        Returns:
            True if it stopped within ``grace_s`` (or was gone already), False if it had
            to be forced.
        """
        ...

    def failure_reason(self, replica: Replica) -> str:
        """One line saying why a replica that is gone exited (its log's error, usually)."""
        ...

    def close(self) -> None:
        """Release the backend's helpers at server stop; running replicas keep running."""
        ...


# --- orchestrators: backends that run and scale the replicas themselves -----------------
#
# Kubernetes and Ray Serve start, restart, place and (with their own autoscalers) scale
# replicas; modelyard tells them the desired state of a whole deployment and reads back
# what runs. The orchestrated controller (:mod:`modelyard.deploy._orchestrated`) talks to
# them only through :class:`OrchestratorBackend`; the desired-state model (revisions,
# weights, rollouts) and the event history are the same as for local processes.


@dataclass(frozen=True)
class RevisionTarget:
    """One revision the orchestrator should run.

    Attributes:
        revision: The revision (model reference and runtime settings: cpu, memory, gpu).
        weight: Percent of the deployment's traffic it gets (targets sum to 100, or to 0
            while nothing is ready yet).
        min_replicas: Fewest replicas (0: scale to zero where the orchestrator can).
        max_replicas: Most replicas.
        replicas: A count decided by modelyard's own autoscaler, or None when the
            orchestrator's autoscaler decides within ``[min_replicas, max_replicas]``.
    """

    revision: Revision
    weight: int
    min_replicas: int
    max_replicas: int
    replicas: int | None = None


@dataclass(frozen=True)
class ObservedReplica:
    """A replica as the orchestrator reports it (a pod, a Serve replica).

    Attributes:
        id: The orchestrator's name for it (pod name, Serve replica id).
        revision: The revision it runs.
        state: ``starting``, ``ready``, ``draining``, ``stopped`` or ``failed``.
        node: Where it runs (node name, Ray node id), for events and the UI.
        reason: Why it is not ready or failed (``CrashLoopBackOff: …``), else empty.
        started_at_ms: When it was created, if known.
        ready_at_ms: When it became ready, if known.
    """

    id: str
    revision: int
    state: ReplicaState
    node: str = ""
    reason: str = ""
    started_at_ms: int | None = None
    ready_at_ms: int | None = None


@dataclass(frozen=True)
class Observed:
    """What runs for one deployment.

    Attributes:
        replicas: Every replica the orchestrator knows of.
        rolled_out: Whether the last applied state is fully in place (every target has
            its desired replicas ready and no old replica is left).
        endpoint: Where clients send requests (a Service URL, the Serve route), if any.
        message: A one-line status from the orchestrator (``waiting for rollout …``).
        load: The load each revision got, by revision number, as the cumulative counters
            the local gateway keeps (:class:`~modelyard.deploy.signals.RevisionCounters`:
            arrivals, completions, errors, service times, the time integral of requests
            in flight, and those in flight now, stamped with ``now_s`` on one clock per
            backend), so modelyard's own autoscaler is fed on an orchestrator exactly as
            behind the gateway: the controller diffs consecutive samples. None when the
            backend has no load signal (Kubernetes: its HPA, KEDA or Knative scale) or
            could not read it this time; the controller then holds its last count.
    """

    replicas: tuple[ObservedReplica, ...]
    rolled_out: bool
    endpoint: str | None = None
    message: str = ""
    load: Mapping[int, RevisionCounters] | None = None


class OrchestratorBackend(Protocol):
    """Runs whole deployments on an orchestrator (Kubernetes, Ray Serve).

    Calls come from the orchestrated controller's thread; implementations need not be
    thread-safe beyond that.
    """

    def apply(self, deployment: Deployment, targets: Sequence[RevisionTarget]) -> None:
        """Make the orchestrator run ``targets`` for ``deployment``: idempotent, returns
        without waiting for the rollout (``observe`` reports it). Revisions not in
        ``targets`` are removed.

        Raises:
            ModelyardError: the desired state is refused (an invalid object, no access);
                the controller records the reason as an event and retries later.
            OSError: the orchestrator cannot be reached; retried later.
        """
        ...

    def observe(self, deployment: Deployment) -> Observed:
        """Read back what runs for ``deployment``.

        Raises:
            OSError: the orchestrator cannot be reached.
        """
        ...

    def remove(self, deployment: Deployment) -> None:
        """Delete everything the backend created for ``deployment``; idempotent."""
        ...

    def close(self) -> None:
        """Release clients and connections at server stop; deployments keep running."""
        ...
