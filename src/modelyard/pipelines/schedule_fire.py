"""One fire of a pipeline schedule as a process: its target, confined to
``MODELYARD_PIPELINES_DIR``; its command line, environment and log; how it is stopped.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from modelyard.core.errors import InvalidInput
from modelyard.core.schedules import FireRecord, ScheduleRecord

__all__ = [
    "FireLaunch",
    "FireProcess",
    "PipelineTarget",
    "fire_env",
    "log_tail",
    "pipeline_command",
    "resolve_target",
    "spawn_fire",
    "stop_orphan",
    "terminate",
]

LOG_TAIL_CHARS = 2000
_ATTR_RE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")


@dataclass(frozen=True)
class PipelineTarget:
    """A checked ``path.py:attr``: ``relative`` as stored, ``path`` the resolved file."""

    relative: str
    path: Path
    attr: str

    @property
    def argument(self) -> str:
        """What ``modelyard pipeline run`` is given."""
        return f"{self.path}:{self.attr}"


def resolve_target(pipelines_dir: Path, target: str) -> PipelineTarget:
    """Check that ``target`` (``file.py:attr``, relative to ``pipelines_dir`` or absolute)
    names an existing Python file inside ``pipelines_dir`` once symlinks are resolved.

    Raises:
        InvalidInput: naming ``target`` and the folder: malformed, outside the folder
            (``..``, an absolute path or a symlink elsewhere), missing, or not ``.py``.
    """
    root = pipelines_dir.expanduser().resolve()
    file, sep, attr = target.rpartition(":")
    if not sep or not file or not _ATTR_RE.match(attr):
        raise InvalidInput(
            f"target: {target!r} is not 'path.py:attr' (a file in {root} and the name "
            "of the pipeline in it)"
        )
    candidate = Path(file)
    try:
        resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
        inside = resolved.is_relative_to(root)
        exists = inside and resolved.is_file()
    except (OSError, ValueError, RuntimeError) as exc:  # too long, NUL byte, symlink loop
        raise InvalidInput(f"target: cannot resolve {file!r}: {exc}") from None
    if not inside:
        raise InvalidInput(
            f"target: {file!r} is outside the pipelines folder {root} "
            "(MODELYARD_PIPELINES_DIR); the server runs only pipeline files kept there"
        )
    if resolved.suffix != ".py":
        raise InvalidInput(f"target: {file!r} is not a Python file (.py)")
    if not exists:
        raise InvalidInput(f"target: no file {file!r} in the pipelines folder {root}")
    relative = resolved.relative_to(root).as_posix()
    return PipelineTarget(f"{relative}:{attr}", resolved, attr)


@dataclass(frozen=True)
class FireLaunch:
    """What one fire runs: the schedule, the fire record and its checked target."""

    schedule: ScheduleRecord
    fire: FireRecord
    target: PipelineTarget


def pipeline_command(launch: FireLaunch) -> list[str]:
    """``python -m modelyard pipeline run <target> --executor <e> --schedule <id>``."""
    run = ["pipeline", "run", launch.target.argument]
    options = ["--executor", launch.schedule.executor, "--schedule", launch.schedule.id]
    return [sys.executable, "-m", "modelyard", *run, *options]


@dataclass
class FireProcess:
    """A fire's running subprocess, its log file and the id of its token."""

    launch: FireLaunch
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    token_id: str | None


def fire_env(
    base_env: Mapping[str, str],
    *,
    tracking_uri: str,
    project: str,
    work_dir: Path,
    token: str | None,
) -> dict[str, str]:
    """``base_env`` less its ``MODELYARD_*`` (the server's own store and artifact URIs,
    its token), plus what a fire needs to log to this server."""
    env = {k: v for k, v in base_env.items() if not k.upper().startswith("MODELYARD_")}
    env.update(
        MODELYARD_TRACKING_URI=tracking_uri,
        MODELYARD_PROJECT=project,
        MODELYARD_HOME=str(work_dir),
        PYTHONUNBUFFERED="1",
    )
    if token is not None:
        env["MODELYARD_TOKEN"] = token
    return env


def spawn_fire(
    command: list[str],
    launch: FireLaunch,
    env: dict[str, str],
    work_dir: Path,
    token_id: str | None,
) -> FireProcess:
    """Start ``command`` in the pipeline file's folder, in its own process group, its
    output appended to ``<work_dir>/logs/<schedule id>-<fire id>.log``."""
    logs = work_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{launch.schedule.id}-{launch.fire.id}.log"
    log = log_path.open("ab")
    try:
        process = subprocess.Popen(
            command,
            cwd=launch.target.path.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole
        )
    except OSError:
        log.close()
        raise
    return FireProcess(launch, process, log_path, log, token_id)


def log_tail(path: Path) -> str:
    """The last LOG_TAIL_CHARS characters of a fire's log ("" if unreadable)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 4 * LOG_TAIL_CHARS))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return text[-LOG_TAIL_CHARS:]


def terminate(processes: list[subprocess.Popen[bytes]], grace_s: float) -> None:
    """SIGTERM each process group, SIGKILL those still there ``grace_s`` later."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def stop_orphan(pid: int, schedule_id: str) -> bool:
    """SIGTERM the process group of a fire an earlier server left running, if ``pid``
    still is that fire (its command line names the schedule; never another process)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if schedule_id.encode() not in argv or b"modelyard" not in argv:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
        return True
    return False
