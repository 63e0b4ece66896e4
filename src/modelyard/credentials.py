"""The credentials file the local server writes and the client reads (stdlib only)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_credentials(path: Path, tracking_uri: str, token: str) -> None:
    """Write the credentials file atomically with mode 0600 (never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"tracking_uri": tracking_uri, "token": token}, fh)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def read_credentials(path: Path) -> dict[str, str] | None:
    """The saved ``tracking_uri`` and ``token``, or None if absent or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}
