"""The ``modelyard`` command starts without importing what only some commands need."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.testing._ports import free_port

# Each of these cost tens of milliseconds of start-up; commands import them when used.
HEAVY = ("rich", "httpx", "pydantic_settings", "pandas", "numpy", "pyarrow", "fastapi",
         "uvicorn", "sqlalchemy", "click", "pygments")  # fmt: skip


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(result.stdout.strip().replace("'", '"'))
    return loaded


def test_importing_the_cli_loads_nothing_heavy() -> None:
    assert _loaded_after("import modelyard.cli.main") == []


def test_a_command_that_connects_loads_httpx_but_not_its_cli() -> None:
    loaded = _loaded_after("import modelyard.cli.main\nfrom modelyard.client import connect")
    assert loaded == ["httpx"]


def test_version_and_help_run_in_a_fresh_process() -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    version = subprocess.run(
        [sys.executable, "-m", "modelyard", "version", "--json"],
        capture_output=True, text=True, check=True, timeout=60, env=env,
    )  # fmt: skip
    assert json.loads(version.stdout)["version"]
    helped = subprocess.run(
        [sys.executable, "-m", "modelyard", "data", "add", "--help"],
        capture_output=True, text=True, check=True, timeout=60, env=env,
    )  # fmt: skip
    assert "--verify" in helped.stdout


def test_tables_and_errors_still_print(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    monkeypatch.setenv("MODELYARD_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    runner = CliRunner()
    shown = runner.invoke(app, ["config", "show"])
    assert shown.exit_code == 0, shown.output
    assert "MODELYARD_BLOB_FSYNC" in shown.output
    (tmp_path / "f.txt").write_text("x")
    added = runner.invoke(app, ["data", "add", str(tmp_path / "f.txt"), "-n", "f"])
    assert added.exit_code == 1
    assert "cannot reach the modelyard server" in " ".join(added.output.split())
