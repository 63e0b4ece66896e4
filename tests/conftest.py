"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.config import Settings
from modelyard.core.clock import FakeClock
from modelyard.server import build_context, create_app
from modelyard.testing.harness import Api
from modelyard.testing.postgres import PostgresServer, postgres_server

# Nothing a test starts may try to phone home.
for _key, _value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "RAY_USAGE_STATS_ENABLED": "0",
    "DO_NOT_TRACK": "1",
}.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole session; each test gets its own database."""
    with postgres_server() as server:
        yield server


# --- an in-process API server over SQLite and a local folder ---------------------------


@pytest.fixture
def api(tmp_path: Path, fake_clock: FakeClock) -> Iterator[Api]:
    settings = Settings(home=tmp_path / "home")
    ctx = build_context(settings, clock=fake_clock)
    issued = ctx.auth.bootstrap(settings.credentials_path, "http://testserver")
    assert issued is not None
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield Api(ctx, client, issued.plaintext)
    ctx.store.close()
