"""Replicas as real processes: forked from the zygote or spawned, serving, stopping,
failing to verify, outliving their launcher, and the zygote coming back after a kill."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.deploy._launcher import (
    Launcher,
    ReplicaSpec,
    SpawnLauncher,
    ZygoteLauncher,
)
from modelyard.deploy.processes import pid_alive, probe_ready, stop_replica
from modelyard.models import read_manifest
from modelyard.serving._demo import free_port, write_demo_package

pytestmark = pytest.mark.slow

COLUMNS = [f"f{i}" for i in range(20)]
READY_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_package(tmp_path_factory.mktemp("deploy") / "logreg", "logreg")


@pytest.fixture(scope="module")
def zygote() -> Iterator[ZygoteLauncher]:
    launcher = ZygoteLauncher(preload=("sklearn",))
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture
def replicas() -> Iterator[list[int]]:
    """Pids a test started; whatever still runs at the end is stopped."""
    pids: list[int] = []
    try:
        yield pids
    finally:
        for pid in pids:
            if pid_alive(pid):
                stop_replica(pid, grace_s=5.0)


def make_spec(package: Path, tmp_path: Path, **changes: object) -> ReplicaSpec:
    fields: dict[str, object] = {
        "package_path": package,
        "model_name": "churn",
        "model_version": "1",
        "expected_files": read_manifest(package).digests(),
        "port": free_port(),
        "log_path": tmp_path / "logs" / "replica.log",
    }
    return ReplicaSpec(**{**fields, **changes})  # type: ignore[arg-type]


def start(launcher: Launcher, spec: ReplicaSpec, replicas: list[int]) -> int:
    pid = launcher.start(spec).pid
    replicas.append(pid)
    return pid


def wait_ready(pid: int, spec: ReplicaSpec) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not probe_ready(spec.host, spec.port):
        if not pid_alive(pid) or time.monotonic() > deadline:
            pytest.fail(f"replica {pid} not ready:\n{spec.log_path.read_text()}")
        time.sleep(0.01)


def wait_until(condition: object, timeout_s: float = 5.0) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def invoke(spec: ReplicaSpec) -> tuple[int, object]:
    body = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[0.0] * 20]}})
    conn = http.client.HTTPConnection(spec.host, spec.port, timeout=10)
    try:
        conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def assert_serves_then_stops_without_zombie(pid: int, spec: ReplicaSpec) -> None:
    wait_ready(pid, spec)
    status, body = invoke(spec)
    assert status == 200, body
    assert isinstance(body, dict)
    assert len(body["predictions"]) == 1
    assert stop_replica(pid, grace_s=10.0) is True
    assert not pid_alive(pid)
    # Reaped by its parent (the launcher's thread, or the zygote), not left a zombie.
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"))
    log = spec.log_path
    assert wait_until(lambda: f"replica {pid} exited with status 0" in log.read_text())


def test_spawned_replica_serves_and_stops_gracefully(
    package: Path, tmp_path: Path, replicas: list[int]
) -> None:
    spec = make_spec(package, tmp_path)
    launched = SpawnLauncher().start(spec)
    replicas.append(launched.pid)
    assert (launched.mode, launched.port) == ("spawn", spec.port)
    assert_serves_then_stops_without_zombie(launched.pid, spec)


def test_forked_replica_serves_and_stops_gracefully(
    zygote: ZygoteLauncher, package: Path, tmp_path: Path, replicas: list[int]
) -> None:
    spec = make_spec(package, tmp_path)
    launched = zygote.start(spec)
    replicas.append(launched.pid)
    assert (launched.mode, launched.port) == ("fork", spec.port)
    assert_serves_then_stops_without_zombie(launched.pid, spec)


@pytest.mark.parametrize("mode", ["fork", "spawn"])
def test_wrong_digest_ends_the_replica_with_the_loaders_error(
    mode: str, zygote: ZygoteLauncher, package: Path, tmp_path: Path, replicas: list[int]
) -> None:
    expected = {**read_manifest(package).digests(), "model.pkl": "0" * 64}
    spec = make_spec(package, tmp_path, expected_files=expected)
    launcher: Launcher = zygote if mode == "fork" else SpawnLauncher()
    pid = start(launcher, spec, replicas)
    assert wait_until(lambda: not pid_alive(pid), timeout_s=READY_TIMEOUT_S)
    assert wait_until(lambda: f"replica {pid} exited with status 1" in spec.log_path.read_text())
    log = spec.log_path.read_text()
    assert "IntegrityError" in log
    assert "'model.pkl' does not match the digest recorded at registration" in log
    assert not probe_ready(spec.host, spec.port)


def test_forked_replica_outlives_its_launcher(
    package: Path, tmp_path: Path, replicas: list[int]
) -> None:
    spec = make_spec(package, tmp_path)
    launcher = ZygoteLauncher()
    try:
        pid = start(launcher, spec, replicas)
        wait_ready(pid, spec)
    finally:
        launcher.close()
    assert pid_alive(pid)
    assert probe_ready(spec.host, spec.port)
    assert invoke(spec)[0] == 200
    assert stop_replica(pid, grace_s=10.0) is True
    assert not pid_alive(pid)


def test_zygote_is_restarted_after_being_killed(
    package: Path, tmp_path: Path, replicas: list[int]
) -> None:
    launcher = ZygoteLauncher()
    try:
        assert launcher.preload(["json"]) == {}
        first = launcher.zygote_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        spec = make_spec(package, tmp_path)
        launched = launcher.start(spec)
        replicas.append(launched.pid)
        assert launched.mode == "fork"
        assert launcher.zygote_pid not in (None, first)
        wait_ready(launched.pid, spec)
        assert invoke(spec)[0] == 200
    finally:
        launcher.close()


def test_falls_back_to_spawning_when_the_zygote_cannot_run(
    package: Path, tmp_path: Path, replicas: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    launcher = ZygoteLauncher(argv=[sys.executable, "-c", "raise SystemExit(3)"])
    try:
        with caplog.at_level(logging.WARNING, logger="modelyard.deploy"):
            launched = launcher.start(make_spec(package, tmp_path))
        replicas.append(launched.pid)
        assert launched.mode == "spawn"
        assert launcher.mode == "spawn"
        assert "fresh interpreters" in caplog.text
        assert pid_alive(launched.pid)
    finally:
        launcher.close()


def test_a_zombie_is_not_alive() -> None:
    proc = subprocess.Popen(["true"])
    try:
        stat = Path(f"/proc/{proc.pid}/stat")
        assert wait_until(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")
        assert not pid_alive(proc.pid)
    finally:
        proc.wait()


def test_stop_replica_kills_a_process_that_ignores_sigterm() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        assert stop_replica(proc.pid, grace_s=0.2) is False
        assert not pid_alive(proc.pid)
        assert not os.path.exists(f"/proc/{proc.pid}")  # our zombie child, reaped
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
