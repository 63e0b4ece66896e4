"""The controller's reconcile pass with a fake replica backend (no processes, no gateway)."""

from __future__ import annotations

from typing import Any

from modelyard.core.clock import FakeClock
from modelyard.core.deployments import (
    Deployment,
    Replica,
    Revision,
    RevisionDraft,
    RuntimeSettings,
    ScalingConfig,
)
from modelyard.deploy._backend import Launched, ReplicaBackend
from modelyard.deploy._reconcile import DeploymentController
from modelyard.store import MetadataStore


class FakeBackend:
    """Starts nothing: hands out pids and records what it was asked to start.

    Its replicas are never alive, so one that was started is seen exiting while starting.
    """

    def __init__(self) -> None:
        self.started: list[tuple[str, int, int]] = []
        self.stopped: list[str] = []

    def prepare(self, project: str, revision: Revision) -> None:
        pass

    def launch(self, replica_id: str, deployment: Deployment, revision: Revision) -> Launched:
        port = 20_000 + len(self.started)
        self.started.append((replica_id, revision.number, port))
        return Launched(4_000_000 + len(self.started), port, deployment.config.launch)

    def alive(self, replica: Replica) -> bool:
        return False

    def ready(self, replica: Replica, *, timeout_s: float = 0.5) -> bool:
        return False

    def stop(self, replica: Replica, *, grace_s: float) -> bool:
        self.stopped.append(replica.id)
        return True

    def failure_reason(self, replica: Replica) -> str:
        return "ValueError: the fake model does not load"

    def close(self) -> None:
        pass


def controller(
    store: MetadataStore, backend: ReplicaBackend, **kwargs: Any
) -> DeploymentController:
    return DeploymentController(store, backend, None, clock=FakeClock(), **kwargs)


def deploy(store: MetadataStore, **scaling: Any) -> None:
    draft = RevisionDraft("m", 1, "models:/m/1", RuntimeSettings(), weight=100)
    store.deployments.create("default", "d", ScalingConfig(**scaling), draft, "u")


def test_the_global_replica_limit_holds_and_says_so(store: MetadataStore) -> None:
    deploy(store, min_replicas=3, max_replicas=4)
    backend = FakeBackend()
    ctl = controller(store, backend, max_total_replicas=2)
    ctl.run_once()
    assert len(backend.started) == 2
    dep = store.deployments.get("d")
    events = store.deployments.events(dep.id)
    assert any(e.kind == "quota" and "limit 2" in e.message for e in events)
    assert len(store.deployments.replicas(dep.id)) == 2


def test_a_replica_that_dies_while_starting_fails_its_revision(store: MetadataStore) -> None:
    deploy(store, min_replicas=1, max_replicas=2)
    backend = FakeBackend()
    ctl = controller(store, backend, max_total_replicas=4)
    ctl.run_once()  # starts one replica: its fake pid is not a live process
    ctl.run_once()  # sees it gone: the revision failed with the log's reason
    dep = store.deployments.get("d")
    assert dep.revisions[0].state == "failed"
    assert "does not load" in dep.revisions[0].error
    replicas = store.deployments.replicas(dep.id, active_only=False)
    assert replicas[0].state == "failed"
    assert replicas[0].stopped_at_ms is not None
    ctl.run_once()  # a failed revision gets no more replicas
    assert len(backend.started) == 1
