"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from modelyard.core.clock import FakeClock
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
