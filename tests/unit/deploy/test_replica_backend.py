"""The controller's side of the ReplicaBackend contract, with a scripted fake backend, and
the local-process backend's wrapping of the process code (no process is started)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.core.clock import FakeClock
from modelyard.core.deployments import (
    Deployment,
    Replica,
    Revision,
    RevisionDraft,
    RuntimeSettings,
    ScalingConfig,
)
from modelyard.core.errors import NotFound
from modelyard.deploy import _local_backend
from modelyard.deploy._backend import Launched
from modelyard.deploy._health import drain_finished, start_overdue, stopped_state
from modelyard.deploy._local_backend import LocalProcessBackend
from modelyard.deploy._reconcile import DeploymentController
from modelyard.deploy._replicas import Package
from modelyard.deploy._rollouts import shadow_event
from modelyard.deploy._scaling import drain_order, held
from modelyard.store import DeploymentChange, MetadataStore


class ScriptedBackend:
    """Replicas that are alive and ready as the test says; launches and stops recorded."""

    def __init__(self) -> None:
        self.alive_now = True
        self.ready_now = True
        self.prepare_error: Exception | None = None
        self.launch_error: Exception | None = None
        self.launched: list[str] = []
        self.stopped: list[str] = []

    def prepare(self, project: str, revision: Revision) -> None:
        if self.prepare_error is not None:
            raise self.prepare_error

    def launch(self, replica_id: str, deployment: Deployment, revision: Revision) -> Launched:
        if self.launch_error is not None:
            raise self.launch_error
        self.launched.append(replica_id)
        return Launched(4_000_000 + len(self.launched), 20_000, "fake")

    def alive(self, replica: Replica) -> bool:
        return self.alive_now and replica.id not in self.stopped

    def ready(self, replica: Replica, *, timeout_s: float = 0.5) -> bool:
        return self.ready_now

    def stop(self, replica: Replica, *, grace_s: float) -> bool:
        self.stopped.append(replica.id)
        return True

    def failure_reason(self, replica: Replica) -> str:
        return "RuntimeError: scripted"

    def close(self) -> None:
        pass


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
def ctl(store: MetadataStore, backend: ScriptedBackend) -> Iterator[DeploymentController]:
    controller = DeploymentController(store, backend, None, clock=FakeClock())
    yield controller
    controller.stop(stop_replicas=False)


def deploy(store: MetadataStore, **scaling: Any) -> int:
    draft = RevisionDraft("m", 1, "models:/m/1", RuntimeSettings(), weight=100)
    return store.deployments.create("default", "d", ScalingConfig(**scaling), draft, "u").id


def messages(store: MetadataStore, dep_id: int) -> list[str]:
    return [e.message for e in store.deployments.events(dep_id)]


def test_a_replica_goes_starting_ready_draining_stopped(
    store: MetadataStore, backend: ScriptedBackend, ctl: DeploymentController
) -> None:
    dep_id = deploy(store, min_replicas=1, max_replicas=1)
    ctl.run_once()  # launched: starting
    (r,) = store.deployments.replicas(dep_id)
    assert (r.state, r.pid, r.port, r.mode) == ("starting", 4_000_001, 20_000, "fake")
    ctl.run_once()  # its readiness check answers: ready, and the revision with it
    assert store.deployments.replicas(dep_id)[0].state == "ready"
    assert store.deployments.get("d").revisions[0].state == "ready"
    store.deployments.change(dep_id, DeploymentChange(status="deleting"))
    ctl.run_once()  # nothing wanted: it drains
    assert store.deployments.replicas(dep_id)[0].state == "draining"
    ctl.run_once()  # no gateway, so no route and no request on it: it is stopped
    deadline = time.monotonic() + 5
    while store.deployments.replicas(dep_id, active_only=True) and time.monotonic() < deadline:
        time.sleep(0.01)
    (r,) = store.deployments.replicas(dep_id, active_only=False)
    assert (r.state, r.exit_reason) == ("stopped", "scaled down")
    assert backend.stopped == [r.id]
    ctl.run_once()  # the last replica is gone: the deployment goes
    assert store.deployments.list_all() == []


def test_a_revision_the_backend_cannot_prepare_fails(
    store: MetadataStore, backend: ScriptedBackend, ctl: DeploymentController
) -> None:
    dep_id = deploy(store, min_replicas=1, max_replicas=1)
    backend.prepare_error = NotFound("model version 'm' 1 is gone")
    ctl.run_once()
    assert backend.launched == []
    rev = store.deployments.get("d").revisions[0]
    assert rev.state == "failed"
    assert "is gone" in rev.error
    assert store.deployments.replicas(dep_id) == []


def test_a_launch_that_fails_is_an_event_and_tried_again(
    store: MetadataStore, backend: ScriptedBackend, ctl: DeploymentController
) -> None:
    dep_id = deploy(store, min_replicas=1, max_replicas=1)
    backend.launch_error = OSError("no more processes")
    ctl.run_once()
    assert "could not start a replica: no more processes" in messages(store, dep_id)
    assert store.deployments.get("d").revisions[0].state == "pending"
    backend.launch_error = None
    ctl.run_once()
    assert len(backend.launched) == 1


def test_a_ready_replica_that_exits_has_failed_with_an_event(
    store: MetadataStore, backend: ScriptedBackend, ctl: DeploymentController
) -> None:
    dep_id = deploy(store, min_replicas=1, max_replicas=1)
    ctl.run_once()
    ctl.run_once()
    backend.alive_now = False
    ctl.run_once()
    (r,) = [r for r in store.deployments.replicas(dep_id, active_only=False) if r.state == "failed"]
    assert r.exit_reason == "exited unexpectedly"
    assert f"replica {r.id} exited unexpectedly" in messages(store, dep_id)


def test_adopt_keeps_live_ready_replicas_and_forgets_the_rest(
    store: MetadataStore, backend: ScriptedBackend, ctl: DeploymentController
) -> None:
    dep_id = deploy(store, min_replicas=1, max_replicas=1)
    ctl.run_once()
    ctl.adopt()  # alive and ready: kept
    (r,) = store.deployments.replicas(dep_id)
    assert r.state == "ready"
    backend.ready_now = False
    ctl.adopt()  # no longer answers: gone
    (r,) = store.deployments.replicas(dep_id, active_only=False)
    assert (r.state, r.exit_reason) == ("stopped", "lost while the server was down")


class FakeFactory:
    def __init__(self) -> None:
        self.started: list[tuple[str, int, str]] = []
        self.closed = False

    def package(self, project: str, revision: Revision) -> Package:
        return Package(Path("/nonexistent"), revision.model_name, revision.model_version, {})

    def start(
        self,
        replica_id: str,
        package: Package,
        revision: Revision,
        port: int,
        mode: str = "fork",
        deployment: object = None,
    ) -> tuple[int, str]:
        self.started.append((replica_id, port, mode))
        return 4321, "spawn"

    def failure_reason(self, replica: Replica) -> str:
        return f"log of {replica.id}"

    def close(self) -> None:
        self.closed = True


def test_the_local_backend_drives_the_process_code(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(_local_backend, "free_port", lambda host: 5555)
    monkeypatch.setattr(_local_backend, "pid_alive", lambda pid: calls.append(("alive", pid)))
    monkeypatch.setattr(
        _local_backend,
        "probe_ready",
        lambda host, port, timeout_s: calls.append(("ready", (host, port, timeout_s))),
    )
    monkeypatch.setattr(
        _local_backend,
        "stop_replica",
        lambda pid, grace_s: calls.append(("stop", (pid, grace_s))),
    )
    factory = FakeFactory()
    local = LocalProcessBackend(factory)  # type: ignore[arg-type]
    rev = Revision(1, "m", 1, "models:/m/1", RuntimeSettings(), "ready", "", 100, 0.0, 0)
    config = ScalingConfig(launch="fork")
    dep = Deployment(1, "default", "d", config, "active", 1, None, None, (rev,), 1, "u", 0, 0)
    local.prepare("default", rev)
    assert local.launch("r-1", dep, rev) == Launched(4321, 5555, "spawn")
    assert factory.started == [("r-1", 5555, "fork")]
    replica = Replica(
        "r-1", 1, 1, 4321, 5555, "starting", "spawn", False, 1.0, 512, 0, None, None, ""
    )
    local.alive(replica)
    local.ready(replica, timeout_s=0.2)
    local.stop(replica, grace_s=30.0)
    assert calls == [
        ("alive", 4321),
        ("ready", ("127.0.0.1", 5555, 0.2)),
        ("stop", (4321, 30.0)),
    ]
    assert local.failure_reason(replica) == "log of r-1"
    local.close()
    assert factory.closed


def test_pure_replica_and_scaling_decisions() -> None:
    starting = Replica("a", 1, 1, 1, 1, "starting", "fork", False, 1.0, 512, 1_000, None, None, "")
    ready = Replica("b", 1, 1, 2, 2, "ready", "fork", False, 1.0, 512, 0, 0, None, "")
    idle_ready = Replica("c", 1, 1, 3, 3, "ready", "fork", False, 1.0, 512, 0, 0, None, "")
    assert start_overdue(starting, 1_000 + 120_001, 120.0)
    assert not start_overdue(starting, 1_000 + 120_000, 120.0)
    assert stopped_state(starting, "not ready within 120s") == "failed"
    assert stopped_state(starting, "scaled down") == "stopped"
    assert stopped_state(ready, "server stopped") == "stopped"
    assert drain_finished(0.0, 1.0, unrouted=True, idle=True, request_timeout_s=60)
    assert not drain_finished(0.0, 1.0, unrouted=False, idle=True, request_timeout_s=60)
    assert drain_finished(0.0, 65.1, unrouted=False, idle=False, request_timeout_s=60)
    order = drain_order([ready, idle_ready, starting], {"b": 3, "c": 0})
    assert [r.id for r in order] == ["a", "c", "b"]
    assert held(0, ScalingConfig(min_replicas=1, max_replicas=3)) == 1
    assert held(5, ScalingConfig(min_replicas=1, max_replicas=3)) == 3


def test_shadow_event_counts_only_new_comparisons() -> None:
    assert shadow_event(2, {"agreed": 5, "disagreed": 1}, {"agreed": 5, "disagreed": 1}) is None
    event = shadow_event(2, {"sent": 10, "agreed": 9, "disagreed": 1}, {"sent": 4, "agreed": 3})
    assert event is not None
    assert event.message == "shadow agreed with the primary on 85.7% of 7 compared responses"
    assert event.data["sent"] == 6
    assert event.data["agreement_rate"] == 0.8571
