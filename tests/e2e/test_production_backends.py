"""The same server, CLI and client on PostgreSQL + S3 (SeaweedFS) instead of SQLite + a folder."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import pytest

from modelyard.client import ModelyardClient
from modelyard.core.errors import AlreadyExists, NotFound, PermissionDenied
from modelyard.testing.postgres import PostgresServer
from modelyard.testing.seaweedfs import S3Endpoint
from modelyard.testing.server_process import running_server

pytestmark = pytest.mark.slow
_n = itertools.count()


def test_server_on_postgres_and_s3(
    tmp_path: Path, pg_server: PostgresServer, s3_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    db = f"e2e_{next(_n)}"
    env = {
        "MODELYARD_STORE_URI": pg_server.create_database(db),
        "MODELYARD_ARTIFACT_URI": f"s3://{s3_bucket}/e2e-{db}",
        "AWS_ENDPOINT_URL": s3_endpoint.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3_endpoint.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_endpoint.secret_key,
        "AWS_DEFAULT_REGION": s3_endpoint.region,
    }
    body = b"model bytes " * 300_000
    with running_server(tmp_path / "home", env=env) as server:
        with ModelyardClient(server.uri, server.admin_token) as client:
            client.create_project("fraud-team")
            client.add_member("fraud-team", "alice", "viewer")
            entry = client.put_artifact("fraud-team", "models/m.bin", body)
            assert entry.digest == hashlib.sha256(body).hexdigest()
            out = tmp_path / "m.bin"
            client.download_artifact("fraud-team", "models/m.bin", out)
            assert out.read_bytes() == body
            with pytest.raises(AlreadyExists):
                client.create_project("fraud-team")
            with pytest.raises(NotFound):
                client.get_project("ghost")
            alice = client.create_token("alice-laptop", user="alice")
        with ModelyardClient(server.uri, alice.plaintext) as as_alice:
            with pytest.raises(PermissionDenied):
                as_alice.put_artifact("fraud-team", "x", b"x")
            assert [e.path for e in as_alice.list_artifacts("fraud-team")] == ["models/m.bin"]
        assert server.uri.startswith("http://127.0.0.1:")

    # the rows really are in PostgreSQL and the bytes really are in the bucket
    with (
        running_server(tmp_path / "home2", env=env) as again,
        ModelyardClient(again.uri, alice.plaintext) as client,
    ):
        assert [p.name for p in client.list_projects()] == ["fraud-team"]
