"""``modelyard experiments`` and ``modelyard runs`` against a real server."""

from __future__ import annotations

import json

import pytest

from modelyard.client import ModelyardClient
from modelyard.core.tracking import LogBatch, Metric, RunStatus
from modelyard.testing.cli_runner import run_cli
from modelyard.testing.server_process import ServerProcess

pytestmark = pytest.mark.slow


def _seed(server: ServerProcess) -> tuple[str, str]:
    with ModelyardClient(server.uri, server.admin_token) as client:
        experiment = client.create_experiment("default", "churn", {"team": "growth"})
        ids = []
        for depth, auc in ((4, 0.91), (8, 0.95)):
            run = client.create_run(experiment.id, name=f"rf-{depth}")
            client.log_batch(
                run.id,
                LogBatch(
                    metrics=(Metric("auc", auc, 0, 0), Metric("loss", 0.2, 0, 0)),
                    params=(("max_depth", str(depth)), ("n_estimators", "200")),
                ),
            )
            client.update_run(run.id, status=RunStatus.FINISHED)
            ids.append(run.id)
    return ids[0], ids[1]


def test_runs_commands(server: ServerProcess) -> None:
    first, second = _seed(server)
    experiments = json.loads(run_cli(server, "experiments", "ls", "--json").stdout)
    assert [e["name"] for e in experiments] == ["Default", "churn"]

    listed = run_cli(
        server, "runs", "ls", "-e", "churn", "--filter", "metrics.auc > 0.92", "--json"
    )
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [second]

    ordered = json.loads(
        run_cli(
            server, "runs", "ls", "-e", "churn", "--order-by", "metrics.auc ASC", "--json"
        ).stdout
    )
    assert [r["id"] for r in ordered] == [first, second]

    shown = json.loads(run_cli(server, "runs", "show", first, "--json").stdout)
    assert shown["run"]["params"]["max_depth"] == "4"

    compared = json.loads(run_cli(server, "runs", "compare", first, second, "--json").stdout)
    differs = {row["key"]: row["differs"] for row in compared["rows"]}
    assert differs == {
        "params.max_depth": True,
        "params.n_estimators": False,
        "metrics.auc": True,
        "metrics.loss": False,
    }
    table = run_cli(server, "runs", "compare", first, second)
    assert table.returncode == 0
    assert "metrics.auc" in table.stdout


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("runs", "ls", "-e", "ghost"), 1, "does not exist"),
        (("runs", "ls", "-e", "Default", "--filter", "metrics.a ~ 1"), 2, "invalid filter"),
        (("runs", "ls", "-e", "Default", "--order-by", "nonsense"), 2, "unknown attribute"),
        (("runs", "show", "ffffffffffffffffffffffffffffffff"), 1, "does not exist"),
        (("runs", "compare", "onlyone"), 2, "at least two"),
    ],
)
def test_runs_mistakes(
    server: ServerProcess, args: tuple[str, ...], code: int, fragment: str
) -> None:
    result = run_cli(server, *args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
