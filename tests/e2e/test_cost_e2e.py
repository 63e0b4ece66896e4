"""The cost ledger end to end: a real server reading the user's price file, the real CLI.

A bad price file must stop ``modelyard server`` with one line naming the file and line;
a good one overrides the defaults, and a running run is billed at its prices up to now.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from modelyard.client import ModelyardClient
from modelyard.testing._ports import free_port
from modelyard.testing.cli_runner import run_cli
from modelyard.testing.server_process import running_server, server_command

pytestmark = pytest.mark.slow


def test_a_bad_price_file_stops_the_server_with_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "prices.toml").write_text(
        'currency = "USD"\n[provisioned]\ncpu = "0.04 USD per parsec"\n'
    )
    done = subprocess.run(
        server_command(free_port()),
        env={"MODELYARD_HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    said = done.stderr.replace("\n", "")  # Rich wraps the line to the terminal's width
    assert f"{home / 'prices.toml'}:3: provisioned.cpu: unknown unit 'parsec'" in said
    assert "Traceback" not in done.stderr + done.stdout


def test_a_running_run_is_billed_at_the_users_prices(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # One dollar per vCPU-second and nothing for memory: a run costs its seconds.
    (home / "prices.toml").write_text(
        '[provisioned]\ncpu = "3600 USD per vCPU-hour"\nmemory = "0 USD per GB-hour"\n'
    )
    with running_server(home) as server:
        started = time.time()
        with ModelyardClient(server.uri, server.admin_token) as client:
            run = client.create_run(0, name="train", tags={"team": "ml"})
        tagged = run_cli(server, "cost", "tag", "env=prod", "--project", "default")
        assert tagged.returncode == 0, tagged.stderr
        time.sleep(0.5)
        shown = run_cli(server, "cost", "report", "--by", "run", "--json", "-p", "default")
        elapsed = time.time() - started
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        (group,) = [g for g in report["groups"] if g["key"] == run.id]
        assert report["currency"] == "USD"
        assert 0.4 <= group["cost"] <= elapsed + 1.0
        by_tag = run_cli(server, "cost", "report", "--by", "tag", "--csv", "-p", "default")
        assert by_tag.returncode == 0, by_tag.stderr
        lines = by_tag.stdout.splitlines()
        assert lines[0].split(",")[:4] == ["tag", "name", "project", "currency"]
        assert {line.split(",")[0] for line in lines[1:]} >= {"env=prod", "team=ml", "total"}
        bad = run_cli(server, "cost", "report", "--by", "team", "-p", "default")
        assert bad.returncode == 2
        assert "by: unknown roll-up 'team'" in bad.stderr
        assert "Traceback" not in bad.stderr
