#!/usr/bin/env python3
"""Set-up and the two everyday commands, on a machine that has only Python and pip.

    python3 dev.py quickstart   # install, then run the main job
    python3 dev.py test         # install everything, then lint, type-check and test

It bootstraps uv with pip, syncs the locked environment into .venv, installs the Debian
packages the tests need (PostgreSQL, Prometheus, Chromium) when they are missing, and
runs the command.
Services the tests need are started and stopped by the tests themselves.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV_BIN = ROOT / ".venv" / "bin"
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "RAY_USAGE_STATS_ENABLED": "0",
    "DO_NOT_TRACK": "1",
    "UV_NO_PROGRESS": "1",
}
DEBIAN_PACKAGES = {
    "postgresql": "/usr/lib/postgresql/*/bin/initdb",
    "prometheus": "/usr/bin/promtool",
    "chromium": "/usr/bin/chromium",  # the web UI's browser tests (Playwright drives it)
}


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(*cmd: str, env: dict[str, str] | None = None) -> None:
    say(" ".join(cmd))
    merged = {**os.environ, **QUIET_ENV, **(env or {})}
    result = subprocess.run(cmd, cwd=ROOT, env=merged, check=False)
    if result.returncode != 0:
        say(f"failed ({result.returncode}): {' '.join(cmd)}")
        sys.exit(result.returncode)


def uv() -> list[str]:
    probe = subprocess.run(
        [sys.executable, "-m", "uv", "--version"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        say("installing uv with pip")
        run(sys.executable, "-m", "pip", "install", "--quiet", "uv")
    return [sys.executable, "-m", "uv"]


def sync(*, all_extras: bool, dev: bool) -> None:
    cmd = [*uv(), "sync", "--frozen", "--quiet"]
    if all_extras:
        cmd.append("--all-extras")
    if not dev:
        cmd.append("--no-dev")
    run(*cmd)


def debian_packages() -> None:
    missing = [pkg for pkg, probe in DEBIAN_PACKAGES.items() if not glob.glob(probe)]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        say(f"please install these Debian packages first: {' '.join(missing)}")
        sys.exit(1)
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env=env)


def cmd_test(pytest_args: list[str]) -> None:
    sync(all_extras=True, dev=True)
    debian_packages()
    bin_ = str(VENV_BIN)
    sources = [
        p for p in ("src", "tests", "benchmarks", "examples", "dev.py") if (ROOT / p).exists()
    ]
    run(f"{bin_}/ruff", "check", *sources)
    run(f"{bin_}/ruff", "format", "--check", *sources)
    run(f"{bin_}/mypy", "--strict", "src")
    run(f"{bin_}/pytest", *pytest_args)


def cmd_quickstart(args: list[str]) -> None:
    sync(all_extras=False, dev=False)
    os.execv(str(VENV_BIN / "modelyard"), ["modelyard", "quickstart", *args])  # noqa: S606


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("test", "quickstart"):
        print(__doc__)
        sys.exit(2)
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "test":
        cmd_test(rest)
    else:
        cmd_quickstart(rest)


if __name__ == "__main__":
    main()
