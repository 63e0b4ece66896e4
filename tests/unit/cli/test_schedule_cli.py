"""``modelyard pipeline schedule``: what the CLI refuses before it calls the server, and a
server that does not answer (one line, never a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.testing._ports import free_port


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    monkeypatch.setenv("MODELYARD_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    return CliRunner()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["add", "nightly", "flow.py:pipeline"], "--cron"),
        (["fires", "nightly", "--limit", "0"], "--limit"),
        (["run", "nightly", "--wait", "--timeout", "0"], "--timeout"),
    ],
)
def test_usage_errors_exit_2(runner: CliRunner, args: list[str], fragment: str) -> None:
    result = runner.invoke(app, ["pipeline", "schedule", *args])
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [["ls"], ["run", "nightly"], ["disable", "nightly"]])
def test_an_unreachable_server_is_one_line(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(app, ["pipeline", "schedule", *args])
    assert result.exit_code == 1
    assert "cannot reach the modelyard server" in result.output
    assert "Traceback" not in result.output


def test_help_lists_every_command(runner: CliRunner) -> None:
    result = runner.invoke(app, ["pipeline", "schedule", "--help"])
    assert result.exit_code == 0
    for command in ("add", "ls", "show", "rm", "enable", "disable", "run", "fires"):
        assert command in result.output
