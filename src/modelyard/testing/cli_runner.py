"""Helpers for end-to-end tests."""

from __future__ import annotations

import subprocess
import sys

from modelyard.testing.server_process import ServerProcess


def run_cli(
    server: ServerProcess, *args: str, token: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = server.env()
    if token is not None:
        env["MODELYARD_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
