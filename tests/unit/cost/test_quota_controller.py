"""The deployment controller's scale path under a project quota, driven as the existing
controller tests drive it: a fake process factory, no gateway, a fake clock. Replicas
it "starts" stay alive and starting (the process checks are stubbed), so only the
quota decides how many there are."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.core.clock import FakeClock
from modelyard.core.deployments import Revision, RevisionDraft, RuntimeSettings, ScalingConfig
from modelyard.core.entities import ArtifactEntry
from modelyard.deploy import _local_backend
from modelyard.deploy._local_backend import LocalProcessBackend
from modelyard.deploy._reconcile import DeploymentController
from modelyard.deploy._replicas import Package
from modelyard.store import MetadataStore, open_store


class FakeFactory:
    """Starts nothing: hands out pids and records what it was asked to start."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []

    def package(self, project: str, revision: Revision) -> Package:
        return Package(Path("/nonexistent"), revision.model_name, revision.model_version, {})

    def start(self, replica_id: str, package: Package, revision: Revision, port: int,
              mode: str = "fork", deployment: Any = None) -> tuple[int, str]:  # fmt: skip
        self.started.append((deployment.name if deployment else "", revision.number))
        return 4_000_000 + len(self.started), mode

    def failure_reason(self, replica: Any) -> str:
        return "not used"

    def close(self) -> None:
        pass


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MetadataStore]:
    monkeypatch.setattr(_local_backend, "pid_alive", lambda pid: True)
    monkeypatch.setattr(_local_backend, "probe_ready", lambda *a, **k: False)
    s = open_store(f"sqlite:///{tmp_path / 'm.db'}", FakeClock())
    s.migrate()
    s.auth.create_project("default")
    s.registry.create_version(
        "default", "m", source_run_id=None, source_uri="upload", flavor="sklearn",
        signature_json="", package_digest="a" * 64,
        files=[ArtifactEntry("modelyard.yaml", "a" * 64, 1)], user="u",
    )  # fmt: skip
    yield s
    s.close()


def deploy(store: MetadataStore, name: str, cpu: float = 1.0, **scaling: Any) -> int:
    draft = RevisionDraft("m", 1, "models:/m/1", RuntimeSettings(cpu=cpu), weight=100)
    return store.deployments.create("default", name, ScalingConfig(**scaling), draft, "u").id


def quota(store: MetadataStore, **limits: Any) -> None:
    values = {"max_replicas": None, "max_cpu": None, "max_memory_gb": None, "max_gpu": None}
    store.budgets.set_quota("default", **{**values, **limits}, by="admin")


def active(store: MetadataStore, dep_id: int) -> int:
    return len(store.deployments.replicas(dep_id, active_only=True))


def quota_events(store: MetadataStore, dep_id: int) -> list[str]:
    return [e.message for e in store.deployments.events(dep_id, kind="quota")]


def test_scale_ups_stop_at_the_quota_say_so_once_and_nothing_is_stopped(
    store: MetadataStore,
) -> None:
    dep = deploy(store, "d", min_replicas=3, max_replicas=4)
    quota(store, max_replicas=2)
    factory = FakeFactory()
    backend = LocalProcessBackend(factory)  # type: ignore[arg-type]
    ctl = DeploymentController(store, backend, None, clock=FakeClock(), max_total_replicas=10)
    ctl.run_once()
    assert active(store, dep) == 2
    (event,) = quota_events(store, dep)
    assert "max_replicas 2 replicas" in event
    assert "instead of 3" in event
    ctl.run_once()
    ctl.run_once()
    assert len(factory.started) == 2
    assert len(quota_events(store, dep)) == 1  # once per change, not every pass
    # Lowered below what runs: nothing is drained or stopped.
    quota(store, max_replicas=1)
    ctl.run_once()
    assert active(store, dep) == 2
    assert all(r.state == "starting" for r in store.deployments.replicas(dep))
    # Raised: the minimum is reached, and nothing more is said.
    quota(store, max_replicas=10)
    ctl.run_once()
    assert active(store, dep) == 3
    assert len(quota_events(store, dep)) == 1


def test_the_quota_spans_the_projects_deployments_and_their_cpu(store: MetadataStore) -> None:
    big = deploy(store, "big", cpu=2.0, min_replicas=2, max_replicas=2)
    small = deploy(store, "small", cpu=0.5, min_replicas=3, max_replicas=4)
    quota(store, max_cpu=5.0)
    factory = FakeFactory()
    backend = LocalProcessBackend(factory)  # type: ignore[arg-type]
    ctl = DeploymentController(store, backend, None, clock=FakeClock(), max_total_replicas=10)
    ctl.run_once()
    # big takes 4 vCPU first; small gets the 1 vCPU left: two of its three.
    assert (active(store, big), active(store, small)) == (2, 2)
    (event,) = quota_events(store, small)
    assert "max_cpu 5 vCPU (4 in use, 0.5 per replica)" in event
    assert quota_events(store, big) == []
