"""The controller's reconcile pass with a fake process factory (no processes, no gateway)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelyard.core.clock import FakeClock
from modelyard.core.deployments import Revision, RevisionDraft, RuntimeSettings, ScalingConfig
from modelyard.core.entities import ArtifactEntry
from modelyard.deploy._controller import DeploymentController
from modelyard.deploy._replicas import Package
from modelyard.store import MetadataStore, open_store


class FakeFactory:
    """Starts nothing: hands out pids and records what it was asked to start."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int, int]] = []

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
        self.started.append((replica_id, revision.number, port))
        return 4_000_000 + len(self.started), mode

    def failure_reason(self, replica: Any) -> str:
        return "ValueError: the fake model does not load"

    def close(self) -> None:
        pass


@pytest.fixture
def store(tmp_path: Path) -> MetadataStore:
    clock = FakeClock()
    s = open_store(f"sqlite:///{tmp_path / 'm.db'}", clock)
    s.migrate()
    if not any(p.name == "default" for p in s.auth.list_projects()):
        s.auth.create_project("default")
    s.registry.create_version(
        "default", "m", source_run_id=None, source_uri="upload", flavor="sklearn",
        signature_json="", package_digest="a" * 64,
        files=[ArtifactEntry("modelyard.yaml", "a" * 64, 1)], user="u",
    )  # fmt: skip
    return s


def deploy(store: MetadataStore, **scaling: Any) -> None:
    draft = RevisionDraft("m", 1, "models:/m/1", RuntimeSettings(), weight=100)
    store.deployments.create("default", "d", ScalingConfig(**scaling), draft, "u")


def test_the_global_replica_limit_holds_and_says_so(store: MetadataStore) -> None:
    deploy(store, min_replicas=3, max_replicas=4)
    factory = FakeFactory()
    ctl = DeploymentController(store, factory, None, clock=FakeClock(), max_total_replicas=2)  # type: ignore[arg-type]
    ctl.run_once()
    assert len(factory.started) == 2
    dep = store.deployments.get("d")
    events = store.deployments.events(dep.id)
    assert any(e.kind == "quota" and "limit 2" in e.message for e in events)
    assert len(store.deployments.replicas(dep.id)) == 2


def test_a_replica_that_dies_while_starting_fails_its_revision(store: MetadataStore) -> None:
    deploy(store, min_replicas=1, max_replicas=2)
    factory = FakeFactory()
    ctl = DeploymentController(store, factory, None, clock=FakeClock(), max_total_replicas=4)  # type: ignore[arg-type]
    ctl.run_once()  # starts one replica: its fake pid is not a live process
    ctl.run_once()  # sees it gone: the revision failed with the log's reason
    dep = store.deployments.get("d")
    assert dep.revisions[0].state == "failed"
    assert "does not load" in dep.revisions[0].error
    replicas = store.deployments.replicas(dep.id, active_only=False)
    assert replicas[0].state == "failed"
    assert replicas[0].stopped_at_ms is not None
    ctl.run_once()  # a failed revision gets no more replicas
    assert len(factory.started) == 1
