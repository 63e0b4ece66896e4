"""The server as a process: bind safety, restarts, several workers, and SIGKILL mid-upload."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelyard.artifacts import FileBlobStore
from modelyard.client import ModelyardClient
from modelyard.core.errors import ModelyardError
from modelyard.testing.server_process import running_server, server_command

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (("--host", "0.0.0.0"), {}, "--allow-remote"),
        (("--host", "0.0.0.0", "--allow-remote"), {"MODELYARD_AUTH_ENABLED": "false"}, "disabled"),
        (("--workers", "0"), {}, "workers"),
    ],
)
def test_unsafe_or_bad_bind_is_refused(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], fragment: str
) -> None:
    result = subprocess.run(
        server_command(5999, *args),
        env={**os.environ, "MODELYARD_HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_restart_keeps_data_and_the_first_credentials(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with running_server(home) as first:
        token = first.admin_token
        with ModelyardClient(first.uri, token) as client:
            client.create_project("kept")
    with running_server(home) as second:
        assert second.admin_token == token
        with ModelyardClient(second.uri, token) as client:
            assert "kept" in {p.name for p in client.list_projects()}


def test_several_workers_share_the_port(tmp_path: Path) -> None:
    with running_server(tmp_path / "home", "--workers", "2") as server:
        with ModelyardClient(server.uri, server.admin_token) as client:
            for i in range(20):
                client.create_project(f"p{i}")
            assert len(client.list_projects()) == 21
        children = subprocess.run(
            ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) >= 2


def _slow_body(total_mb: int, sent: threading.Event) -> Iterator[bytes]:
    for i in range(total_mb):
        if i == 8:
            sent.set()
        yield os.urandom(1 << 20)
        time.sleep(0.02)


def test_sigkill_mid_upload_leaves_nothing_partial(tmp_path: Path) -> None:
    home = tmp_path / "home"
    committed = os.urandom(3 << 20)
    with running_server(home) as server:
        token = server.admin_token
        with ModelyardClient(server.uri, token) as client:
            first = client.put_artifact("default", "committed.bin", committed)

        halfway = threading.Event()
        outcome: list[BaseException] = []

        def upload() -> None:
            try:
                with ModelyardClient(server.uri, token) as client:
                    client.put_artifact("default", "partial.bin", _slow_body(400, halfway))
            except (ModelyardError, httpx.HTTPError) as exc:
                outcome.append(exc)

        uploader = threading.Thread(target=upload)
        uploader.start()
        assert halfway.wait(60), "upload never got going"
        os.killpg(server.process.pid, signal.SIGKILL)
        uploader.join(60)
        assert outcome, "the upload cannot have succeeded"

    # nothing partial is visible in the blob store, and the database is sound
    blobs = FileBlobStore(home / "artifacts")
    assert list(blobs.iter_digests()) == [first.digest]
    with sqlite3.connect(home / "modelyard.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    with running_server(home) as again, ModelyardClient(again.uri, token) as client:
        assert [e.path for e in client.list_artifacts("default")] == ["committed.bin"]
        out = tmp_path / "out.bin"
        client.download_artifact("default", "committed.bin", out)
        assert out.read_bytes() == committed
        audit = client.list_audit(action="artifact.put")
        assert [r.outcome for r in audit] == ["ok"]


def test_python_m_modelyard_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelyard", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    for command in ("server", "token", "project", "user", "audit", "config", "version"):
        assert command in result.stdout
