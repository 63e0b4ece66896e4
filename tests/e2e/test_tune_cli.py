"""``modelyard tune ls|show`` against a real server, on runs in the study tag layout."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from tune_support import quadratic, tuning_client

from modelyard.client import ModelyardClient
from modelyard.core.tracking import LogBatch, Metric, RunStatus
from modelyard.testing.cli_runner import run_cli
from modelyard.testing.server_process import ServerProcess

pytestmark = pytest.mark.slow

SPACE = {
    "lr": {"type": "loguniform", "low": 0.0001, "high": 0.1},
    "depth": {"type": "randint", "low": 2, "high": 12},
    "kernel": {"type": "choice", "values": ["rbf", "linear"]},
}
STATES = ["COMPLETE"] * 5 + ["PRUNED"] + ["COMPLETE"] * 4 + ["FAIL", "COMPLETE"]


def _seed_study(server: ServerProcess) -> tuple[str, dict[int, str], int]:
    """A finished 12-trial study of an auc (max) objective driven by lr; returns the parent
    run id, trial number → run id, and the best trial's number."""
    rng = random.Random(7)
    with ModelyardClient(server.uri, server.admin_token) as client:
        experiment = client.create_experiment("default", "tuning")
        client.create_run(experiment.id, name="plain-run")  # not a study: never listed
        parent = client.create_run(
            experiment.id,
            name="sweep",
            tags={
                "modelyard.study": "sweep",
                "modelyard.study.metric": "auc",
                "modelyard.study.mode": "max",
                "modelyard.study.sampler": "tpe",
                "modelyard.study.pruner": "median",
                "modelyard.study.executor": "local",
                "modelyard.study.n_trials": "20",
                "modelyard.study.space": json.dumps(SPACE),
                "modelyard.study.state": "RUNNING",
            },
        )
        trial_runs: dict[int, str] = {}
        values: dict[int, float] = {}
        chosen: dict[int, dict[str, object]] = {}
        for number, state in enumerate(STATES):
            lr, depth = 10 ** rng.uniform(-4, -1), rng.randint(2, 12)
            params = {"lr": lr, "depth": depth, "kernel": rng.choice(["rbf", "linear"])}
            chosen[number] = params
            auc = 0.95 - 0.1 * (math.log10(lr) + 2.5) ** 2 + 0.001 * depth
            run = client.create_run(
                experiment.id,
                name=f"trial-{number}",
                parent_run_id=parent.id,
                tags={"modelyard.trial": str(number)},
            )
            tags = [
                ("modelyard.trial.state", state),
                ("modelyard.trial.params", json.dumps(params)),
                ("modelyard.trial.node", "node-a" if number % 2 else "node-b"),
            ]
            metrics = [Metric("auc", auc * step / 3, step, 0) for step in (1, 2)]
            if state == "FAIL":
                tags.append(("modelyard.trial.error", "RuntimeError: diverged"))
            else:
                tags.append(("modelyard.trial.value", repr(auc)))
                metrics.append(Metric("auc", auc, 3, 0))
                if state == "COMPLETE":
                    values[number] = auc
            client.log_batch(
                run.id,
                LogBatch(
                    metrics=tuple(metrics),
                    params=tuple((k, str(v)) for k, v in params.items()),
                    tags=tuple(tags),
                ),
            )
            status = RunStatus.FAILED if state == "FAIL" else RunStatus.FINISHED
            client.update_run(run.id, status=status)
            trial_runs[number] = run.id
        best = max(values, key=values.__getitem__)
        client.log_batch(
            parent.id,
            LogBatch(
                metrics=(Metric("auc", values[best], 0, 0),),
                tags=(
                    ("modelyard.study.state", "COMPLETED"),
                    ("modelyard.study.best_trial", str(best)),
                    ("modelyard.study.best_run", trial_runs[best]),
                    *((f"best.{k}", str(v)) for k, v in chosen[best].items()),
                ),
            ),
        )
        client.update_run(parent.id, status=RunStatus.FINISHED)
    return parent.id, trial_runs, best


def test_tune_ls_and_show(server: ServerProcess, tmp_path: Path) -> None:
    parent_id, trial_runs, best = _seed_study(server)

    listed = run_cli(server, "tune", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["experiment"], r["state"]) for r in rows] == [
        ("sweep", "tuning", "COMPLETED")
    ]
    assert (rows[0]["finished"], rows[0]["n_trials"], rows[0]["best_trial"]) == (12, 20, best)
    assert (rows[0]["metric"], rows[0]["mode"], rows[0]["run_id"]) == ("auc", "max", parent_id)
    only_default = run_cli(server, "tune", "ls", "--experiment", "Default", "--json")
    assert json.loads(only_default.stdout) == []
    table = run_cli(server, "tune", "ls", "-e", "tuning")
    assert table.returncode == 0, table.stderr
    assert "sweep" in table.stdout
    assert "12/20" in table.stdout

    shown = run_cli(server, "tune", "show", "sweep", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["study"]["name"] == "sweep"
    assert report["study"]["space"]["lr"]["kind"] == "loguniform"
    assert report["best_trial"]["number"] == best
    assert report["best_trial"]["run_id"] == trial_runs[best]
    assert set(report["best_trial"]["params"]) == {"lr", "depth", "kernel"}
    assert [t["number"] for t in report["trials"]] == list(range(12))
    assert [t["state"] for t in report["trials"]] == STATES
    assert report["trials"][10]["error"] == "RuntimeError: diverged"
    assert report["trials"][10]["value"] is None
    completes = [t["value"] for t in report["trials"] if t["state"] == "COMPLETE"]
    assert report["best_trial"]["value"] == max(completes)
    assert all(t["duration_s"] is not None and t["duration_s"] >= 0 for t in report["trials"])
    ranked = [row["param"] for row in report["importance"]]
    assert sorted(ranked) == ["depth", "kernel", "lr"]
    assert ranked[0] == "lr"
    assert report["importance_note"] is None

    by_id = json.loads(run_cli(server, "tune", "show", parent_id, "--json").stdout)
    assert by_id["best_trial"] == report["best_trial"]

    png = tmp_path / "sweep.png"
    plotted = run_cli(server, "tune", "show", "sweep", "--plot", str(png))
    assert plotted.returncode == 0, plotted.stderr
    assert f"best trial {best}" in plotted.stdout
    assert "param importance" in plotted.stdout
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000


def test_tune_mistakes_are_clean_errors(server: ServerProcess, tmp_path: Path) -> None:
    unknown = run_cli(server, "tune", "show", "ghost")
    assert unknown.returncode != 0
    assert "no study named 'ghost' in project 'default'" in " ".join(unknown.stderr.split())
    assert "Traceback" not in unknown.stderr

    bad_plot = run_cli(server, "tune", "show", "ghost", "--plot", str(tmp_path / "no" / "x.png"))
    assert bad_plot.returncode == 2
    assert "--plot" in bad_plot.stderr
    assert "Traceback" not in bad_plot.stderr

    ghost_experiment = run_cli(server, "tune", "ls", "-e", "ghost")
    assert ghost_experiment.returncode == 1
    assert "does not exist" in ghost_experiment.stderr
    assert json.loads(run_cli(server, "tune", "ls", "--json").stdout) == []


def test_tune_show_reads_a_study_my_tune_wrote(
    server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelyard as my

    for _client in tuning_client(server, monkeypatch):
        study = my.tune(
            quadratic,
            {"x": my.uniform(0.0, 1.0), "kernel": my.choice(["rbf", "linear"])},
            metric="loss",
            n_trials=6,
            sampler="random",
            pruner="none",
            workers=2,
            study="cli-readback",
            seed=3,
        )
    shown = run_cli(server, "tune", "show", "cli-readback", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["best_trial"]["run_id"] == study.best_trial.run_id  # type: ignore[union-attr]
    assert data["best_trial"]["value"] == pytest.approx(study.best_value)
    assert len(data["trials"]) == 6
    png = tmp_path / "readback.png"
    plotted = run_cli(server, "tune", "show", "cli-readback", "--plot", str(png))
    assert plotted.returncode == 0, plotted.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    listed = json.loads(run_cli(server, "tune", "ls", "--json").stdout)
    assert "cli-readback" in {row["name"] for row in listed}
