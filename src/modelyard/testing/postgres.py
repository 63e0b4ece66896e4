"""Run a real PostgreSQL server for tests: ``with postgres_server() as pg: pg.uri("db")``.

Uses the Debian package's binaries (``apt-get install postgresql``). ``initdb`` refuses to
run as root, so when root the server runs as the ``postgres`` user through ``runuser``.
The cluster lives in a fresh temporary directory, listens on 127.0.0.1 and a free port
only, and is stopped and removed on exit, even if the body raised.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from modelyard.testing._ports import free_port

INSTALL_HINT = "install PostgreSQL with `apt-get install -y postgresql` (python3 dev.py test does)"


def find_pg_bin() -> Path:
    """The newest installed PostgreSQL server's bin directory.

    Raises:
        RuntimeError: no server is installed; the message says how to install one.
    """
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError(f"no PostgreSQL server binaries found: {INSTALL_HINT}")
    return Path(initdb).parent


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    bin_dir: Path
    socket_dir: Path
    run_as: str | None

    def uri(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def _pg(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin_dir / tool), "-h", self.host, "-p", str(self.port), "-U", self.user]
        _run_as(self.run_as, [*cmd, *args])

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create ``name`` (optionally as a copy of ``template``) and return its URI."""
        extra = ["-T", template] if template else []
        self._pg("createdb", *extra, name)
        return self.uri(name)

    def drop_database(self, name: str) -> None:
        self._pg("dropdb", "--if-exists", "--force", name)


def _run_as(user: str | None, cmd: list[str], log: Path | None = None) -> None:
    full = ["runuser", "-u", user, "--", *cmd] if user else cmd
    result = subprocess.run(full, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = log.read_text()[-2000:] if log and log.exists() else ""
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}\n{tail}"
        )


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throw-away PostgreSQL cluster; stop and delete it on exit."""
    bin_dir = find_pg_bin()
    run_as = "postgres" if os.geteuid() == 0 else None
    # Not under pytest's tmp dirs: those are 0700 root, which the postgres user can't enter.
    workdir = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
    data, log = workdir / "data", workdir / "log"
    port = free_port()
    server = PostgresServer("127.0.0.1", port, "postgres", bin_dir, workdir, run_as)
    started = False
    try:
        _run_as(
            run_as,
            [
                str(bin_dir / "initdb"),
                "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                "--locale=C.UTF-8", "--no-sync",
            ],
        )  # fmt: skip
        options = (
            f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200"
        )
        _run_as(
            run_as,
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
             "-o", options, "start"],
            log,
        )  # fmt: skip
        started = True
        yield server
    finally:
        if started:
            with contextlib.suppress(RuntimeError):
                _run_as(
                    run_as,
                    [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                )
        shutil.rmtree(workdir, ignore_errors=True)
