"""Step 1: use the server at ``MODELYARD_TRACKING_URI``, or start one in the background.

A started server runs in its own session (so Ctrl-C in the terminal reaches only the
quickstart, which then stops it on purpose), logs to
``$MODELYARD_HOME/logs/quickstart-server.log`` and brings the deployment gateway and
controller with it. Stopping it is a SIGTERM: the server drains and stops its replicas
and gateway itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from modelyard.config import Settings
from modelyard.net import is_loopback
from modelyard.quickstart._result import StepError

HEALTH_TIMEOUT_S = 1.0
START_TIMEOUT_S = 90.0
STOP_GRACE_S = 45.0  # the server gives its gateway up to 35 s to drain
LOG_TAIL_CHARS = 1500


@dataclass(frozen=True)
class ServerHandle:
    """The server the quickstart talks to; ``process`` is set only if it started it."""

    uri: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    gateway_port: int | None = None

    @property
    def started(self) -> bool:
        return self.process is not None


def answers_health(uri: str) -> bool:
    """Whether a modelyard server answers ``GET /health`` at ``uri``."""
    try:
        response = httpx.get(f"{uri.rstrip('/')}/health", timeout=HEALTH_TIMEOUT_S)
    except httpx.HTTPError:
        return False
    try:
        return response.status_code == 200 and response.json().get("status") == "ok"
    except ValueError:
        return False


def find_or_start_server(settings: Settings) -> ServerHandle:
    """The running server at ``settings.tracking_uri``, or a new one started there.

    Raises:
        StepError: nothing answers at a remote URI, the port is taken by something else,
            ``MODELYARD_HOME`` is not writable, or the new server did not become healthy.
    """
    uri = settings.tracking_uri.rstrip("/")
    if answers_health(uri):
        return ServerHandle(uri)
    parts = urlsplit(uri)
    host, port = parts.hostname or "", parts.port or 80
    if parts.scheme != "http" or not is_loopback(host):
        raise StepError(
            f"no modelyard server answers at {uri}, and the quickstart only starts one on "
            "this machine (http://127.0.0.1:<port>); start it there or fix "
            "MODELYARD_TRACKING_URI"
        )
    if not port_free(port):
        raise StepError(
            f"port {port} is taken by something that is not a modelyard server "
            f"(GET {uri}/health did not answer); free it or set MODELYARD_TRACKING_URI "
            "to another port"
        )
    gateway_port = choose_gateway_port(settings)
    return _start(settings, port, gateway_port)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind ``host:port`` now (with SO_REUSEADDR, as servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_gateway_port(settings: Settings) -> int:
    """The configured gateway port, or a free one when something else holds it.

    A gateway this home left running (recorded in ``run/gateway.json``) keeps its port:
    the new server adopts it.
    """
    port = settings.gateway_port
    if port_free(port) or _own_gateway_port(settings.home) == port:
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        free: int = sock.getsockname()[1]
    return free


def _own_gateway_port(home: Path) -> int | None:
    try:
        return int(json.loads((home / "run" / "gateway.json").read_text())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _start(settings: Settings, port: int, gateway_port: int) -> ServerHandle:
    log_path = settings.home / "logs" / "quickstart-server.log"
    command = [sys.executable, "-m", "modelyard", "server", "--port", str(port),
               "--gateway-port", str(gateway_port)]  # fmt: skip
    # A short monitor period, so the drift demo of step 6 shows within seconds.
    env = {"MODELYARD_MONITOR_INTERVAL_S": "2", **os.environ, "MODELYARD_HOME": str(settings.home)}
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    except OSError as exc:
        raise StepError(
            f"cannot start a server under MODELYARD_HOME={settings.home}: {exc}"
        ) from None
    handle = ServerHandle(f"http://127.0.0.1:{port}", process, log_path, gateway_port)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers_health(handle.uri):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(handle)
            why = (
                f"exited with status {process.returncode}"
                if process.returncode is not None
                else f"was not healthy after {START_TIMEOUT_S:g} s"
            )
            raise StepError(f"the server {why}; its log ({log_path}) ends with:\n{_tail(log_path)}")
        time.sleep(0.1)
    return handle


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-LOG_TAIL_CHARS:].strip()
    except OSError:
        return "(no log)"


def stop_server(handle: ServerHandle, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM a server the quickstart started and wait; SIGKILL its group if it hangs."""
    process = handle.process
    if process is None:
        return
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace_s)
    if process.poll() is None:  # hung: its session is ours, nothing else is in it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
