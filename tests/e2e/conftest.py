"""End-to-end fixtures: a real server process and the real CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.testing.server_process import ServerProcess, running_server
from modelyard.tracking import fluent


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path / "home") as proc:
        yield proc


@pytest.fixture
def sdk(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    """The module-level SDK (``import modelyard as my``) pointed at ``server``."""
    monkeypatch.setenv("MODELYARD_HOME", str(server.home))
    monkeypatch.setenv("MODELYARD_TRACKING_URI", server.uri)
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    fluent._reset_for_tests()
    yield server
    fluent._reset_for_tests()
