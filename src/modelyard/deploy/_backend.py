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

from dataclasses import dataclass
from typing import Protocol

from modelyard.core.deployments import Deployment, Replica, Revision


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
