"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from modelyard.config import Settings
from modelyard.core.clock import FakeClock
from modelyard.server import bootstrap_platform, build_context, create_app
from modelyard.testing.harness import Api
from modelyard.testing.postgres import PostgresServer, postgres_server
from modelyard.testing.seaweedfs import S3Endpoint, s3_client, seaweedfs_server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

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
    issued = bootstrap_platform(ctx, "http://testserver")
    assert issued is not None
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield Api(ctx, client, issued.plaintext)
    ctx.store.close()


# --- S3 (SeaweedFS) ---

S3_TEST_BUCKET = "modelyard-test"


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """A real SeaweedFS S3 server for the whole session (started on first use)."""
    workdir: Path = tmp_path_factory.mktemp("seaweedfs")
    with seaweedfs_server(workdir) as endpoint:
        yield endpoint


@pytest.fixture
def s3(s3_endpoint: S3Endpoint) -> Iterator[S3Client]:
    """A boto3 client of the SeaweedFS server, closed after the test."""
    client = s3_client(s3_endpoint)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def s3_bucket(s3_endpoint: S3Endpoint) -> str:
    """The name of a bucket that exists on the SeaweedFS server; share it by prefix."""
    client = s3_client(s3_endpoint)
    try:
        client.create_bucket(Bucket=S3_TEST_BUCKET)
    finally:
        client.close()
    return S3_TEST_BUCKET
