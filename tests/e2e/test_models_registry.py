"""The registry end to end: log, register, alias, load in a fresh process, import, optimize."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

import modelyard as my
from modelyard.artifacts import FileBlobStore
from modelyard.client import ModelyardClient
from modelyard.core.errors import Conflict
from modelyard.testing.cli_runner import run_cli
from modelyard.testing.server_process import ServerProcess

pytestmark = pytest.mark.slow

X, Y = make_classification(n_samples=300, n_features=6, random_state=0)
LOADER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import modelyard as my
    model = my.load_model(sys.argv[1])
    X = np.array(json.loads(sys.stdin.read()))
    print(json.dumps(model.predict(X).tolist()))
    """
)


def _predict_in_fresh_process(server: ServerProcess, uri: str, home: Path) -> object:
    env = {**server.env(), "MODELYARD_HOME": str(home)}
    env.pop("MODELYARD_TOKEN", None)
    if home != server.home:
        env["MODELYARD_TOKEN"] = server.admin_token
    result = subprocess.run(
        [sys.executable, "-c", LOADER, uri],
        input=json.dumps(X.tolist()),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        return RuntimeError(result.stderr)
    return json.loads(result.stdout)


def test_log_register_alias_and_load_fresh(sdk: ServerProcess, tmp_path: Path) -> None:
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, Y)
    expected = forest.predict(X).tolist()
    my.set_experiment("churn")
    with my.start_run(name="rf"):
        first = my.log_model(forest, input_example=X[:5], registered_model_name="churn")
    with my.start_run(name="rf-again"):
        second = my.log_model(forest, input_example=X[:5], registered_model_name="churn")
    assert first.version is not None
    assert second.version is not None
    assert (first.version.version, second.version.version) == (1, 2)
    assert first.version.flavor == "sklearn"
    my.set_alias("churn", "production", 1)
    my.set_alias("churn", "production", 2)

    # a fresh process with its own (empty) cache reproduces the predictions exactly
    got = _predict_in_fresh_process(sdk, "models:/churn@production", tmp_path / "fresh-home")
    assert got == expected
    assert (
        _predict_in_fresh_process(sdk, f"runs:/{first.run_id}/model", tmp_path / "h2") == expected
    )

    with ModelyardClient(sdk.uri, sdk.admin_token) as client:
        history = client.alias_history("default", "churn")
        assert [(c.from_version, c.to_version) for c in history] == [(None, 1), (1, 2)]
        with pytest.raises(Conflict, match="'production'"):
            client.delete_version("default", "churn", 2)
        audit = client.list_audit(action="model.alias.set")
        assert audit[0].target.endswith("1 -> 2")


def test_tampering_is_refused_naming_the_file(sdk: ServerProcess, tmp_path: Path) -> None:
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y)
    with my.start_run():
        logged = my.log_model(forest, input_example=X[:5], registered_model_name="tamper")
    assert logged.version is not None
    pickle_entry = next(f for f in logged.version.files if f.path != "modelyard.yaml")

    # 1. tampered in the local cache: refused before unpickling, naming the file
    my.load_model("models:/tamper/1")  # fills the cache
    cached = sdk.home / "cache" / "models" / logged.version.package_digest / pickle_entry.path
    cached.write_bytes(cached.read_bytes()[:-1] + b"\x00")
    with pytest.raises(Exception, match=pickle_entry.path):
        my.load_model("models:/tamper/1")

    # 2. tampered at rest in the artifact store: the download is refused
    blob = FileBlobStore(sdk.home / "artifacts").blob_path(pickle_entry.digest)
    blob.chmod(0o644)
    blob.write_bytes(b"not the model")
    result = _predict_in_fresh_process(sdk, "models:/tamper/1", tmp_path / "fresh")
    assert isinstance(result, RuntimeError)
    assert pickle_entry.path in str(result)


def test_models_cli(sdk: ServerProcess, tmp_path: Path) -> None:
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, Y)
    with my.start_run():
        my.log_model(forest, input_example=X[:5], registered_model_name="cli-model")
    listed = json.loads(run_cli(sdk, "models", "ls", "--json").stdout)
    assert [m["name"] for m in listed] == ["cli-model"]
    assert run_cli(sdk, "models", "alias", "cli-model", "production", "1").returncode == 0
    shown = json.loads(run_cli(sdk, "models", "show", "cli-model", "--json").stdout)
    assert shown["versions"][0]["aliases"] == ["production"]
    kinds = {n["kind"] for n in shown["lineage"]["nodes"]}
    assert {"run", "model_version"} <= kinds, shown["lineage"]
    history = json.loads(run_cli(sdk, "models", "history", "cli-model", "--json").stdout)
    assert history[0]["to_version"] == 1

    optimized = run_cli(sdk, "models", "optimize", "cli-model/1", "--to", "onnx")
    assert optimized.returncode == 0, optimized.stderr
    onnx = my.get_version("models:/cli-model/2")
    assert onnx.flavor == "onnx"
    predictions = my.load_model("models:/cli-model/2").predict(X.astype(np.float32))
    assert (np.asarray(predictions) == forest.predict(X)).mean() > 0.99

    bad = run_cli(sdk, "models", "alias", "cli-model", "latest", "1")
    assert bad.returncode == 2
    assert "reserved" in bad.stderr
    missing = run_cli(sdk, "models", "alias", "cli-model", "staging", "9")
    assert missing.returncode == 1
    assert "no version 9" in missing.stderr


@pytest.mark.filterwarnings("ignore:.*type hint is inferred as AnyType:UserWarning")
def test_import_an_mlflow_model_directory(sdk: ServerProcess, tmp_path: Path) -> None:
    import mlflow.sklearn

    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, Y)
    mlflow_dir = tmp_path / "mlflow_model"
    mlflow.sklearn.save_model(forest, str(mlflow_dir), serialization_format="cloudpickle")
    result = run_cli(sdk, "models", "import", str(mlflow_dir), "--name", "legacy")
    assert result.returncode == 0, result.stderr
    model = my.load_model("models:/legacy/1")
    assert model.predict(X).tolist() == forest.predict(X).tolist()
    no_dir = run_cli(sdk, "models", "import", str(tmp_path), "--name", "x")
    assert no_dir.returncode == 2
    assert "MLmodel" in no_dir.stderr
