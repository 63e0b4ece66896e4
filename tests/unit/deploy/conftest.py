"""Fixtures shared by the deployment unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.core.clock import FakeClock
from modelyard.core.entities import ArtifactEntry
from modelyard.store import MetadataStore, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    """A migrated SQLite store with project ``default`` and model ``m`` version 1."""
    s = open_store(f"sqlite:///{tmp_path / 'm.db'}", FakeClock())
    s.migrate()
    if not any(p.name == "default" for p in s.auth.list_projects()):
        s.auth.create_project("default")
    s.registry.create_version(
        "default",
        "m",
        source_run_id=None,
        source_uri="upload",
        flavor="sklearn",
        signature_json="",
        package_digest="a" * 64,
        files=[ArtifactEntry("modelyard.yaml", "a" * 64, 1)],
        user="u",
    )
    yield s
    s.close()
