"""``modelyard budget`` and ``quota``: what the CLI refuses before it calls the server (one
line, exit code 2, never a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli._budget_cmds import parse_thresholds
from modelyard.cli.main import app
from modelyard.core.errors import InvalidInput
from modelyard.testing._ports import free_port


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    monkeypatch.setenv("MODELYARD_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    return CliRunner()


def test_thresholds_parse_with_or_without_percent_signs() -> None:
    assert parse_thresholds("50,80, 100%") == [50.0, 80.0, 100.0]
    with pytest.raises(InvalidInput, match="--alert-at: 'half' is not a number"):
        parse_thresholds("50,half")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--monthly-usd", "200", "--monthly", "200"], "give the amount once"),
        ([], "give the amount once"),
        (["--monthly-usd", "200", "--alert-at", "50,,100"], "--alert-at"),
    ],
)
def test_bad_budget_arguments_are_one_line_errors(
    runner: CliRunner, args: list[str], fragment: str
) -> None:
    result = runner.invoke(app, ["budget", "set", *args])
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output


def test_a_negative_quota_is_refused_by_the_cli(runner: CliRunner) -> None:
    result = runner.invoke(app, ["quota", "set", "--max-replicas", "-1"])
    assert result.exit_code == 2
    assert "max-replicas" in result.output


def test_an_unreachable_server_is_one_line(runner: CliRunner) -> None:
    result = runner.invoke(app, ["budget", "show"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
