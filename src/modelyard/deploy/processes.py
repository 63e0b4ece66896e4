"""A replica process seen from outside: is it alive, is it ready, stop it.

Works for any replica, a child of this process or not (one adopted after a server
restart): liveness comes from ``/proc`` (a zombie counts as gone), readiness from the
replica's own ``/v2/health/ready``, and stopping is SIGTERM, then SIGKILL after a grace
period, waking on a pidfd rather than polling where the system has one.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import select
import signal
import time
from pathlib import Path

logger = logging.getLogger("modelyard.deploy")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs: False when it does not exist or is a zombie."""
    if pid <= 0:
        return False
    stat = _proc_stat(pid)
    if stat is not None:
        return stat[0] not in ("Z", "X", "x")
    if os.path.isdir("/proc/self"):
        return False
    try:  # no /proc: not Linux
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """The state letter and parent pid from ``/proc/<pid>/stat``; None if unreadable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return parse_proc_stat(text)


def parse_proc_stat(text: str) -> tuple[str, int]:
    """The state letter and parent pid of a ``/proc/<pid>/stat`` line.

    The command name, in parentheses, may itself hold spaces and parentheses.
    """
    fields = text[text.rindex(")") + 1 :].split()
    return fields[0], int(fields[1])


def stop_replica(pid: int, grace_s: float = 30.0) -> bool:
    """Stop a replica: SIGTERM (it finishes in-flight requests), then SIGKILL after ``grace_s``.

    Works for any replica, a child of this process or not (an adopted one); a zombie
    child of this process is reaped.

    Returns:
        True if it ended within ``grace_s`` of SIGTERM (or was gone already).
    """
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _reap_if_our_zombie(pid)
        return True
    if _wait_gone(pid, grace_s):
        return True
    logger.warning("replica %d did not stop within %g s of SIGTERM; killing it", pid, grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, 10.0)
    return False


def _wait_gone(pid: int, timeout_s: float) -> bool:
    """Wait until ``pid`` is gone or a zombie; a pidfd wakes us when it exits."""
    deadline = time.monotonic() + timeout_s
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):  # exited already, or no pidfd on this system
        pidfd = -1
    try:
        while True:
            _reap_if_our_zombie(pid)
            if not pid_alive(pid):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if pidfd >= 0:
                select.select([pidfd], [], [], remaining)
            else:
                time.sleep(min(0.02, remaining))
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def _reap_if_our_zombie(pid: int) -> None:
    stat = _proc_stat(pid)
    if stat is None or (stat[0] == "Z" and stat[1] == os.getpid()):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def probe_ready(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether ``GET /v2/health/ready`` on ``host:port`` answers 200 within ``timeout_s``."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", "/v2/health/ready")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
