"""The controller's side of the gateway: start or adopt its process, push routes, read stats.

The gateway runs in its own session so that it outlives a crashed server; its port, pid
and control secret are kept in ``$MODELYARD_HOME/run/gateway.json`` (mode 0600), from
which a restarted server adopts it. Every control request carries the secret.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from modelyard.core.errors import Unavailable
from modelyard.deploy.processes import pid_alive
from modelyard.deploy.signals import GatewaySnapshot
from modelyard.serving.predlog import gateway_spool
from modelyard.telemetry import otlp_endpoint_from_env

logger = logging.getLogger("modelyard.deploy")


@dataclass(frozen=True)
class GatewayInfo:
    """Where a gateway listens and how to control it."""

    host: str
    port: int
    pid: int
    secret: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class GatewayLink:
    """Owns (or adopts) the gateway process and talks to its control API.

    Args:
        home: ``MODELYARD_HOME``; the state file and the gateway log live under it.
        port: the gateway's port.
        host: the address it binds.
    """

    def __init__(self, home: Path, port: int, host: str = "127.0.0.1") -> None:
        self._home = home
        self._port = port
        self._host = host
        self._state_path = home / "run" / "gateway.json"
        self._info: GatewayInfo | None = None
        self._client = httpx.Client(timeout=2.0)
        self._owned = False

    @property
    def info(self) -> GatewayInfo:
        if self._info is None:
            raise Unavailable("the gateway is not running")
        return self._info

    @property
    def url(self) -> str:
        return self.info.url

    def start(self, timeout_s: float = 20.0) -> GatewayInfo:
        """Adopt a live gateway recorded in the state file, or start a new one.

        Raises:
            Unavailable: the port is taken by something else, or the gateway did not
                become healthy within ``timeout_s``.
        """
        adopted = self._adopt()
        if adopted is not None:
            logger.info("adopted the gateway on port %d (pid %d)", adopted.port, adopted.pid)
            self._info = adopted
            return adopted
        secret = secrets.token_urlsafe(32)
        log_dir = self._home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "modelyard.gateway", "--host", self._host,
               "--port", str(self._port)]  # fmt: skip
        # Tracing: the server's OTLP endpoint, if its environment configures one.
        cmd += ["--request-log", str(gateway_spool(self._home))]
        otel_endpoint = otlp_endpoint_from_env(os.environ)
        if otel_endpoint:
            cmd += ["--otel-endpoint", otel_endpoint]
        with (log_dir / "gateway.log").open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                env={**os.environ, "MODELYARD_GATEWAY_SECRET": secret},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        info = GatewayInfo(self._host, self._port, proc.pid, secret)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise Unavailable(
                    f"the gateway exited with status {proc.returncode} (is port {self._port} "
                    f"taken?); see {log_dir / 'gateway.log'}"
                )
            if self._healthy(info):
                self._write_state(info)
                self._info = info
                self._owned = True
                self._proc = proc
                return info
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        raise Unavailable(f"the gateway did not become healthy within {timeout_s:g}s")

    def _adopt(self) -> GatewayInfo | None:
        try:
            raw = json.loads(self._state_path.read_text())
            info = GatewayInfo(
                str(raw["host"]), int(raw["port"]), int(raw["pid"]), str(raw["secret"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if info.port != self._port or not pid_alive(info.pid) or not self._healthy(info):
            return None
        # The secret must still be accepted: a different process may hold the port now.
        try:
            r = self._client.get(f"{info.url}/-/stats", headers=_auth(info.secret))
        except httpx.HTTPError:
            return None
        return info if r.status_code == 200 else None

    def _healthy(self, info: GatewayInfo) -> bool:
        try:
            return self._client.get(f"{info.url}/-/health", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def _write_state(self, info: GatewayInfo) -> None:
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"host": info.host, "port": info.port, "pid": info.pid,
                       "secret": info.secret}, f)  # fmt: skip
        os.replace(tmp, self._state_path)

    # --- control API ----------------------------------------------------------------

    def push_routes(self, table: dict[str, Any]) -> bool:
        """Send the route table; False if the gateway could not be reached."""
        info = self.info
        try:
            r = self._client.put(f"{info.url}/-/routes", json=table, headers=_auth(info.secret))
        except httpx.HTTPError as exc:
            logger.warning("pushing routes to the gateway failed: %s", exc)
            return False
        if r.status_code != 200:
            logger.error("the gateway refused the route table: %s %s", r.status_code, r.text)
            return False
        return True

    def stats(self) -> GatewaySnapshot | None:
        """The gateway's counters, or None if it could not be reached."""
        info = self.info
        try:
            r = self._client.get(f"{info.url}/-/stats", headers=_auth(info.secret))
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        return GatewaySnapshot.parse(r.json())

    def watch_wakeups(
        self, on_wake: Callable[[list[tuple[str, int]]], None], stop: threading.Event
    ) -> threading.Thread:
        """Long-poll ``/-/wakeups`` in a thread, calling ``on_wake`` with (deployment, revision)."""

        def run() -> None:
            with httpx.Client(timeout=15.0) as client:
                while not stop.is_set():
                    info = self._info  # re-read: the gateway may have been restarted
                    if info is None:
                        stop.wait(0.5)
                        continue
                    try:
                        r = client.get(
                            f"{info.url}/-/wakeups",
                            params={"timeout_s": 5},
                            headers=_auth(info.secret),
                        )
                        wake = r.json().get("wake", []) if r.status_code == 200 else []
                    except (httpx.HTTPError, ValueError):
                        stop.wait(0.5)
                        continue
                    if wake:
                        on_wake([(str(w["deployment"]), int(w["revision"])) for w in wake])

        thread = threading.Thread(target=run, name="gateway-wakeups", daemon=True)
        thread.start()
        return thread

    def ensure_running(self) -> bool:
        """Restart the gateway if its process is gone; True if it was restarted.

        Raises:
            Unavailable: it could not be started again.
        """
        info = self._info
        if info is not None and pid_alive(info.pid):
            return False
        logger.error("the gateway (pid %s) is gone; starting a new one",
                     info.pid if info else "?")  # fmt: skip
        if self._owned:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=0)
        self._info = None
        with contextlib.suppress(FileNotFoundError):
            self._state_path.unlink()
        self.start()
        return True

    def stop(self) -> None:
        """Stop the gateway (gracefully: in-flight requests finish) and forget it."""
        info = self._info
        self._client.close()
        if info is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + 35.0
        while pid_alive(info.pid) and time.monotonic() < deadline:
            if self._owned:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=0.05)
            else:
                time.sleep(0.05)
        if pid_alive(info.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)
        if self._owned:
            self._proc.wait()
        with contextlib.suppress(FileNotFoundError):
            self._state_path.unlink()
        self._info = None


def _auth(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}
