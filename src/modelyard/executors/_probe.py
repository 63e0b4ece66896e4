"""Is anyone listening? A TCP connect to a Ray address before anything else happens.

``ray.init`` on an address nobody answers can hang for a minute and print pages of
retries; callers (tuning, pipelines) must fail fast and write nothing, so the executor
probes an explicit address first and raises ``ExecutorUnavailable``. Also here: what
this machine has (GPUs, memory), for the local executor's resource checks.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from modelyard.core.errors import InvalidInput
from modelyard.executors._base import ExecutorUnavailable

PROBE_TIMEOUT_S = 3.0


def parse_host_port(address: str, *, field: str = "executor") -> tuple[str, int]:
    """Split ``ray://host:port``, ``host:port`` or ``[::1]:port`` into host and port.

    Raises:
        InvalidInput: no host, no port, or a port outside 1..65535 (the message names
            ``field``).
    """
    rest = address.removeprefix("ray://")
    host, sep, port_text = rest.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit():
        raise InvalidInput(f"{field}: {address!r} is not a Ray address: expected host:port")
    port = int(port_text)
    if not 0 < port < 65536:
        raise InvalidInput(f"{field}: port {port} of {address!r} is out of range 1..65535")
    return host, port


def probe(address: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Connect to ``address`` over TCP and close again.

    Raises:
        InvalidInput: ``address`` is malformed.
        ExecutorUnavailable: nothing accepts a connection within ``timeout_s`` seconds
            (``"Ray at ray://127.0.0.1:10001 does not answer: ..."``).
    """
    host, port = parse_host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except TimeoutError:
        raise ExecutorUnavailable(
            f"Ray at {address} does not answer: no connection within {timeout_s:g} s"
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ExecutorUnavailable(f"Ray at {address} does not answer: {reason}") from None


# --- what this machine has (the local executor rejects tasks it could never run) ---


def local_gpu_count() -> int:
    """GPUs a local worker could use: ``CUDA_VISIBLE_DEVICES`` if set, else /dev/nvidiaN."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [part.strip() for part in visible.split(",") if part.strip()]
        # "-1" (or any negative id) hides every device from CUDA from there on.
        count = 0
        for device in ids:
            if device.startswith("-"):
                break
            count += 1
        return count
    return sum(1 for path in Path("/dev").glob("nvidia*") if path.name[6:].isdigit())


def local_memory_mb() -> int | None:
    """Physical memory of this machine in MiB (None where the OS does not say)."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    if pages <= 0 or page_size <= 0:
        return None
    return int(pages * page_size // (1024 * 1024))
