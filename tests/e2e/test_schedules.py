"""``modelyard pipeline schedule`` as a user types it, against a real server whose
scheduler (``MODELYARD_SCHEDULE_INTERVAL_S=1``) runs a real pipeline file kept in
``MODELYARD_PIPELINES_DIR``: bad input refused naming the field, fire now, the fire's
record (exit code, the pipeline run it made, tagged with the schedule), its token
revoked, disable/enable, remove."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from modelyard.client import ModelyardClient
from modelyard.testing.cli_runner import run_cli
from modelyard.testing.server_process import running_server

pytestmark = pytest.mark.slow

PIPELINE_FILE = textwrap.dedent(
    """
    import modelyard as my


    @my.step
    def ingest(rows: int = 3) -> list[int]:
        return list(range(rows))


    @my.step
    def total(ingest: list[int]) -> int:
        return sum(ingest)


    pipeline = my.Pipeline([ingest, total], name="tiny")
    """
)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def test_a_schedule_fired_now_runs_its_pipeline_on_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # tables as wide as they need
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "tiny.py").write_text(PIPELINE_FILE)
    (tmp_path / "elsewhere.py").write_text(PIPELINE_FILE)
    env = {"MODELYARD_SCHEDULE_INTERVAL_S": "1", "MODELYARD_PIPELINES_DIR": str(pipelines)}
    with running_server(tmp_path / "home", env=env) as server:
        cli = ("pipeline", "schedule")
        added = json.loads(
            _ok(
                run_cli(
                    server, *cli, "add", "tiny", "tiny.py:pipeline", "--cron", "0 3 * * *", "--json"
                )
            )
        )
        assert (added["target"], added["cron"], added["executor"]) == (
            "tiny.py:pipeline",
            "0 3 * * *",
            "local",
        )
        # bad input: one line naming the field, exit code 2, nothing added
        escape = run_cli(server, *cli, "add", "x", "../elsewhere.py:pipeline", "--cron", "@daily")
        assert escape.returncode == 2, escape.stdout
        assert "outside the pipelines folder" in escape.stderr
        assert str(pipelines) in escape.stderr.replace("\n", "")
        bad_cron = run_cli(server, *cli, "add", "x", "tiny.py:pipeline", "--cron", "61 * * * *")
        assert bad_cron.returncode == 2
        assert "cron: '61 * * * *' is invalid" in bad_cron.stderr
        dup = run_cli(server, *cli, "add", "tiny", "tiny.py:pipeline", "--cron", "@daily")
        assert dup.returncode == 1
        assert "already has a schedule named 'tiny'" in dup.stderr
        assert "Traceback" not in escape.stderr + bad_cron.stderr + dup.stderr
        listed = json.loads(_ok(run_cli(server, *cli, "ls", "--json")))
        assert [s["name"] for s in listed] == ["tiny"]

        # fire now: the server's scheduler runs `modelyard pipeline run` and records it
        fire = json.loads(
            _ok(run_cli(server, *cli, "run", "tiny", "--wait", "--timeout", "50", "--json"))
        )
        assert fire["state"] == "SUCCEEDED", fire["message"]
        assert (fire["trigger"], fire["exit_code"], fire["requested_by"]) == ("manual", 0, "admin")
        assert fire["run_id"], fire["message"]
        busy = run_cli(server, *cli, "run", "ghost")
        assert busy.returncode == 1
        assert "schedule 'ghost' does not exist" in busy.stderr

        with ModelyardClient(server.uri, server.admin_token) as client:
            run = client.get_run(fire["run_id"])
            assert run.tags["modelyard.pipeline.schedule"] == added["id"]
            assert run.tags["modelyard.pipeline.state"] == "SUCCEEDED"
            assert run.tags["modelyard.pipeline.target"].endswith("tiny.py:pipeline")
            assert run.user == "admin"  # the schedule's owner, through its own token
            fire_token = next(t for t in client.list_tokens() if t.name.startswith("schedule tiny"))
            assert fire_token.revoked_at is not None  # revoked when the fire ended
            assert (fire_token.project, fire_token.role.value if fire_token.role else None) == (
                "default",
                "editor",
            )

        fires = json.loads(_ok(run_cli(server, *cli, "fires", "tiny", "--json")))
        assert [(f["id"], f["state"]) for f in fires] == [(fire["id"], "SUCCEEDED")]
        table = _ok(run_cli(server, *cli, "fires", "tiny"))
        assert "SUCCEEDED" in table
        assert fire["run_id"] in table

        assert "disabled" in _ok(run_cli(server, *cli, "disable", "tiny"))
        shown = json.loads(_ok(run_cli(server, *cli, "show", "tiny", "--json")))
        assert (shown["enabled"], shown["next_fire_at"], shown["last_state"]) == (
            False,
            None,
            "SUCCEEDED",
        )
        assert "enabled" in _ok(run_cli(server, *cli, "enable", "tiny"))
        _ok(run_cli(server, *cli, "rm", "tiny"))
        assert json.loads(_ok(run_cli(server, *cli, "ls", "--json"))) == []
