"""Datasets end to end: the real CLI and SDK against a real server process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelyard as my
from modelyard.testing.cli_runner import run_cli
from modelyard.testing.server_process import ServerProcess

pytestmark = pytest.mark.slow


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def _table(path: Path, rows: int, shift: float) -> None:
    rng = np.random.default_rng(rows)
    pd.DataFrame(
        {"amount": rng.normal(100 + shift, 10, rows), "region": rng.choice(["n", "s"], rows)}
    ).to_parquet(path)


def test_add_dedupe_show_diff_get_and_errors(server: ServerProcess, tmp_path: Path) -> None:
    data = tmp_path / "credit.parquet"
    _table(data, 1000, 0)
    assert "credit@v1 created" in _ok(run_cli(server, "data", "add", str(data), "-m", "Oct"))
    assert "no change" in _ok(run_cli(server, "data", "add", str(data), "--name", "credit"))
    _table(data, 1200, 5)
    added = json.loads(_ok(run_cli(server, "data", "add", str(data), "--json")))
    assert (added["version"], added["created"]) == ("credit@v2", True)

    shown = _ok(run_cli(server, "data", "show", "credit@v2"))
    assert "1200 rows" in shown
    assert "amount" in shown
    assert "region" in shown
    versions = json.loads(_ok(run_cli(server, "data", "versions", "credit", "--json")))
    assert [v["version"] for v in versions] == [2, 1]
    diff = json.loads(_ok(run_cli(server, "data", "diff", "credit@v1", "credit@v2", "--json")))
    assert diff["tables"][0]["rows"] == [1000, 1200]
    assert "rows 1000 → 1200" in _ok(run_cli(server, "data", "diff", "credit@v1", "credit@v2"))

    out = tmp_path / "local"
    _ok(run_cli(server, "data", "get", "credit@v1", "-o", str(out)))
    assert len(pd.read_parquet(out / "credit.parquet")) == 1000
    assert "credit" in _ok(run_cli(server, "data", "ls"))

    for args, message in (
        (("data", "add", str(tmp_path / "missing.csv"), "-n", "x"), "no such file"),
        (("data", "add", str(data), "-n", "a/b"), "invalid dataset name"),
        (("data", "show", "credit@v9"), "no version v9"),
        (("data", "show", "nope@latest"), "dataset 'nope' does not exist"),
        (("data", "get", "credit@vv", "-o", str(out)), "invalid dataset version"),
        (("lineage", "model:nothing"), "expected <name>/<version>"),
    ):
        result = run_cli(server, *args)
        assert result.returncode != 0, args
        assert message in " ".join(result.stderr.split()), (args, result.stderr)


def _blob_count(server: ServerProcess) -> int:
    root = server.home / "artifacts" / "sha256"
    if not root.exists():
        return 0
    return sum(1 for p in root.rglob("*") if p.is_file() and not p.name.endswith(".partial"))


@pytest.mark.parametrize("how", ["direct", "upload"])
def test_sigkill_midway_leaves_no_version_and_rerun_reuses_blobs(
    server: ServerProcess, tmp_path: Path, how: str
) -> None:
    # direct: this client writes blobs into the server's local store itself;
    # upload: every blob goes through the server (as from another machine).
    flags = ["--upload"] if how == "upload" else []
    tree = tmp_path / "scans"
    tree.mkdir()
    count = 300
    for i in range(count):
        (tree / f"img-{i:04d}.bin").write_bytes(os.urandom(256 * 1024))
    before = _blob_count(server)
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelyard", "data", "add", str(tree), "--json", *flags],
        env=server.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while _blob_count(server) - before < 5 and time.monotonic() < deadline:
            assert proc.poll() is None, "the add finished before it could be killed"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    # Bodies already sent when the client died may still be stored: wait until it settles.
    stored = -1
    while stored != (settled := _blob_count(server) - before):
        stored = settled
        time.sleep(0.5)
    assert 5 <= stored < count
    assert "does not exist" in run_cli(server, "data", "versions", "scans").stderr

    result = json.loads(_ok(run_cli(server, "data", "add", str(tree), "--json", *flags)))
    assert (result["version"], result["created"]) == ("scans@v1", True)
    assert result["uploaded_files"] == count - stored
    assert result["cached_files"] + result["hashed_files"] == count


def test_sdk_lineage_from_dataset_to_model_version(sdk: ServerProcess, tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["y"] = (frame.a + frame.b > 0).astype(int)
    frame.to_csv(data, index=False)
    _ok(run_cli(sdk, "data", "add", str(data), "--name", "train"))

    my.set_experiment("churn")
    with my.start_run(name="fit") as run:
        df = my.use_dataset("train@v1", as_="pandas")
        assert df.shape == (200, 3)
        assert my.use_dataset("train").name == "train.csv"
        model = LogisticRegression().fit(df[["a", "b"]], df["y"])
        features = tmp_path / "features.csv"
        df.assign(score=model.predict_proba(df[["a", "b"]])[:, 1]).to_csv(features, index=False)
        assert my.log_dataset(features, name="scored").ref == "scored@v1"
        my.log_model(model, input_example=df[["a", "b"]].head(3), registered_model_name="churn")

    graph = json.loads(_ok(run_cli(sdk, "lineage", "model:churn/1", "--json")))
    labels = {n["key"]: n["label"] for n in graph["nodes"]}
    edges = {(labels[e["src"]], e["type"], labels[e["dst"]]) for e in graph["edges"]}
    run_label = f"fit ({run.id[:8]})"
    assert ("train@v1", "input", run_label) in edges
    assert (run_label, "produced", "churn/1") in edges
    tree = _ok(run_cli(sdk, "lineage", "dataset:train@v1", "--direction", "down"))
    for text in ("train@v1", "input", "fit", "produced", "churn/1", "output", "scored@v1"):
        assert text in tree
