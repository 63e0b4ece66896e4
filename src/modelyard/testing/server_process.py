"""Start a real ``modelyard server`` process for end-to-end tests, and always stop it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from modelyard.credentials import read_credentials
from modelyard.testing._ports import free_port


@dataclass
class ServerProcess:
    uri: str
    port: int
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def admin_token(self) -> str:
        saved = read_credentials(self.home / "credentials")
        if not saved or "token" not in saved:
            raise RuntimeError(f"no credentials written under {self.home}")
        return saved["token"]

    def env(self) -> dict[str, str]:
        """Environment for a CLI process talking to this server as the local admin."""
        return {
            **os.environ,
            "MODELYARD_HOME": str(self.home),
            "MODELYARD_TRACKING_URI": self.uri,
        }

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def server_command(port: int, *args: str) -> list[str]:
    """``modelyard server`` on ``port``; without a gateway unless ``args`` name one."""
    gateway = [] if any(a.startswith("--gateway") for a in args) else ["--no-gateway"]
    return [sys.executable, "-m", "modelyard", "server", "--port", str(port), *gateway, *args]


def wait_healthy(uri: str, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was healthy")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{uri}/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server at {uri} not healthy after {timeout_s} s")


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def running_server(
    home: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
) -> Iterator[ServerProcess]:
    """Run ``modelyard server`` with ``MODELYARD_HOME=home`` until the block exits."""
    port = port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / f"server-{port}.log"
    full_env = {**os.environ, "MODELYARD_HOME": str(home), **(env or {})}
    full_env.pop("MODELYARD_TOKEN", None)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            server_command(port, *args),
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", port, home, process, log_path)
    try:
        try:
            wait_healthy(server.uri, process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n--- server log ---\n{server.log()[-4000:]}") from None
        yield server
    finally:
        stop_process(process)


def reap_orphans(home: Path) -> None:
    """SIGKILL a gateway and replicas the store or the state file still lists as alive.

    A server stopped gracefully stops what it runs; one that was killed (or a test that
    failed half-way) leaves its gateway and replicas behind, each in its own session.
    """
    # Imported here: the store costs half a second to import, and most users of this
    # module only start and stop a server.
    from modelyard.deploy.processes import pid_alive
    from modelyard.store import open_store

    pids: list[int] = []
    state = home / "run" / "gateway.json"
    if state.exists():
        pids.append(int(json.loads(state.read_text())["pid"]))
    store = open_store(f"sqlite:///{home / 'modelyard.db'}")
    try:
        pids += [r.pid for r in store.deployments.replicas(active_only=True)]
    finally:
        store.close()
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
