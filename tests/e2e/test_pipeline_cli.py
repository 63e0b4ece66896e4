"""``modelyard pipeline run|runs|show`` as a user types them, against a real server."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.client import ModelyardClient
from modelyard.testing.cli_runner import run_cli
from modelyard.testing.server_process import ServerProcess, running_server

pytestmark = pytest.mark.slow

PIPELINE_FILE = textwrap.dedent(
    """
    from pathlib import Path

    import modelyard as my
    from helpers import double  # a neighbour module: the file's folder is importable


    @my.step
    def ingest(rows: int = 4) -> list[int]:
        return list(range(rows))


    @my.step(retries=1, backoff_s=0.01)
    def featurize(ingest: list[int], flag: str = "") -> list[int]:
        if flag and Path(flag).exists():
            raise RuntimeError("feature service unavailable")
        return [double(x) for x in ingest]


    @my.step
    def train(featurize: list[int]) -> int:
        return sum(featurize)


    @my.step
    def summary(ingest: list[int]) -> int:
        return len(ingest)


    pipeline = my.Pipeline([ingest, featurize, train, summary], name="cli-demo")
    not_a_pipeline = 42
    """
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("pipeline-cli") / "home") as server:
        yield server


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("project")
    (folder / "helpers.py").write_text("def double(x: int) -> int:\n    return 2 * x\n")
    (folder / "flow.py").write_text(PIPELINE_FILE)
    return str(folder / "flow.py")


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def test_run_runs_and_show(served: ServerProcess, target: str) -> None:
    out = _ok(run_cli(served, "pipeline", "run", f"{target}:pipeline", "--param", "rows=5"))
    for text in ("ingest", "featurize", "train", "summary", "SUCCEEDED"):
        assert text in out
    first = json.loads(
        _ok(run_cli(served, "pipeline", "run", f"{target}:pipeline", "-P", "rows=5", "--json"))
    )
    assert first["state"] == "SUCCEEDED"
    assert {s["state"] for s in first["steps"].values()} == {"CACHED"}
    assert first["target"] == f"{target}:pipeline"
    other = json.loads(
        _ok(
            run_cli(
                served, "pipeline", "run", f"{target}:pipeline", "--json", "--schedule", "nightly"
            )
        )
    )
    assert other["schedule"] == "nightly"
    assert other["steps"]["ingest"]["state"] == "SUCCEEDED"  # rows=4: a different input
    assert other["steps"]["summary"]["state"] == "SUCCEEDED"

    runs = json.loads(_ok(run_cli(served, "pipeline", "runs", "--json")))
    assert [r["run_id"] for r in runs][:2] == [other["run_id"], first["run_id"]]  # newest first
    assert {r["pipeline"] for r in runs} == {"cli-demo"}
    assert {r["state"] for r in runs} == {"SUCCEEDED"}
    assert _ok(run_cli(served, "pipeline", "runs", "--name", "nope", "--json")).strip() == "[]"
    listed = _ok(run_cli(served, "pipeline", "runs", "--name", "cli-demo"))
    assert first["run_id"][:10] in listed

    shown = json.loads(_ok(run_cli(served, "pipeline", "show", first["run_id"], "--json")))
    assert shown["graph"] == {
        "ingest": [],
        "featurize": ["ingest"],
        "train": ["featurize"],
        "summary": ["ingest"],
    }
    assert shown["steps"]["train"]["cache_hit"] is True
    assert shown["steps"]["train"]["cached_from"]
    text = _ok(run_cli(served, "pipeline", "show", first["run_id"]))
    for piece in ("cli-demo", "CACHED", "featurize", "yes"):
        assert piece in text


def test_a_failed_run_exits_1_and_resumes(
    served: ServerProcess, target: str, tmp_path: Path
) -> None:
    flag = tmp_path / "down"
    flag.touch()
    failed = run_cli(
        served, "pipeline", "run", f"{target}:pipeline", "-P", f"flag={flag}", "--json"
    )
    assert failed.returncode == 1, failed.stderr
    assert "step 'featurize' failed: RuntimeError: feature service unavailable" in failed.stderr
    record = json.loads(failed.stdout)
    assert record["state"] == "FAILED"
    assert record["steps"]["featurize"]["attempts"] == 2
    assert record["steps"]["train"]["state"] == "SKIPPED"
    assert record["steps"]["train"]["reason"] == "upstream featurize failed"
    shown = _ok(run_cli(served, "pipeline", "show", record["run_id"]))
    for piece in ("FAILED", "SKIPPED", "upstream featurize failed"):
        assert piece in shown

    flag.unlink()
    resumed = json.loads(
        _ok(
            run_cli(
                served,
                "pipeline",
                "run",
                f"{target}:pipeline",
                "-P",
                f"flag={flag}",
                "--resume",
                record["run_id"],
                "--json",
            )
        )
    )
    assert resumed["run_id"] == record["run_id"]
    assert resumed["state"] == "SUCCEEDED"
    assert resumed["steps"]["summary"]["run_id"] == record["steps"]["summary"]["run_id"]
    assert resumed["steps"]["featurize"]["run_id"] != record["steps"]["featurize"]["run_id"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pipeline", "run", "{folder}/missing.py:pipeline"), "does not exist"),
        (("pipeline", "run", "{target}"), "expected path.py:attribute"),
        (
            ("pipeline", "run", "{target}:nothing"),
            "has no attribute 'nothing' (pipelines in it: pipeline)",
        ),
        (("pipeline", "run", "{target}:not_a_pipeline"), "is a int, not a modelyard Pipeline"),
        (("pipeline", "run", "{target}:pipeline", "-P", "rows"), "--param expects key=value"),
        (
            ("pipeline", "run", "{target}:pipeline", "-P", "rwos=3"),
            "no step has a parameter named 'rwos'",
        ),
        (("pipeline", "run", "{target}:pipeline", "-x", "dask"), "unknown executor 'dask'"),
        (("pipeline", "show", "0123456789abcdef"), "does not exist"),
    ],
)
def test_user_errors_are_one_clean_line(
    served: ServerProcess, target: str, args: tuple[str, ...], message: str
) -> None:
    folder = str(Path(target).parent)
    result = run_cli(served, *(a.format(target=target, folder=folder) for a in args))
    assert result.returncode in (1, 2), result.stdout
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_show_refuses_a_run_that_is_not_a_pipeline(served: ServerProcess) -> None:
    with ModelyardClient(served.uri, served.admin_token) as client:
        experiment = client.create_experiment("default", "plain")
        run = client.create_run(experiment.id, name="plain")
        runs_before = json.loads(_ok(run_cli(served, "pipeline", "runs", "--json")))
    result = run_cli(served, "pipeline", "show", run.id)
    assert result.returncode == 2
    assert f"run {run.id} is not a pipeline run" in result.stderr
    assert run.id not in {r["run_id"] for r in runs_before}
