"""The local-process backend: replicas are serving-runtime processes on this machine.

It wraps what already knows how: :class:`~modelyard.deploy._replicas.ReplicaFactory`
(package cache, replica logs) with its launchers (:mod:`modelyard.deploy._launcher`,
forking from the :mod:`~modelyard.deploy._zygote` or spawning), and the process checks
of :mod:`modelyard.deploy.processes` (``/proc`` liveness, the health probe, SIGTERM then
SIGKILL). A replica's ``pid`` and ``port`` are all it needs to find one again, so a
restarted server adopts the replicas a previous one launched.
"""

from __future__ import annotations

from modelyard.core.deployments import Deployment, Replica, Revision
from modelyard.deploy._backend import Launched
from modelyard.deploy._replicas import ReplicaFactory, free_port
from modelyard.deploy.processes import pid_alive, probe_ready, stop_replica

# Replicas bind the loopback address; the gateway on the same machine routes to them.
REPLICA_HOST = "127.0.0.1"


class LocalProcessBackend:
    """A :class:`~modelyard.deploy._backend.ReplicaBackend` of local processes.

    Args:
        factory: fetches packages and starts replica processes through its launchers.
    """

    def __init__(self, factory: ReplicaFactory) -> None:
        self._factory = factory

    def prepare(self, project: str, revision: Revision) -> None:
        self._factory.package(project, revision)

    def launch(self, replica_id: str, deployment: Deployment, revision: Revision) -> Launched:
        package = self._factory.package(deployment.project, revision)  # cached by prepare
        port = free_port(REPLICA_HOST)
        pid, mode = self._factory.start(
            replica_id, package, revision, port, deployment.config.launch, deployment=deployment
        )
        return Launched(pid, port, mode)

    def alive(self, replica: Replica) -> bool:
        return pid_alive(replica.pid)

    def ready(self, replica: Replica, *, timeout_s: float = 0.5) -> bool:
        return probe_ready(REPLICA_HOST, replica.port, timeout_s=timeout_s)

    def stop(self, replica: Replica, *, grace_s: float) -> bool:
        return stop_replica(replica.pid, grace_s=grace_s)

    def failure_reason(self, replica: Replica) -> str:
        return self._factory.failure_reason(replica)

    def close(self) -> None:
        self._factory.close()
