"""`modelyard deploy create --backend kubernetes` and `deploy render` through the real CLI
and a real server process: quantities parsed, the spec recorded, manifests written that
pass strict Kubernetes validation, and every bad input a one-line error with exit 2.

No cluster is reachable here: the deployment's desired state is recorded and rendered;
applying it is tested against an API transcript in tests/integration/deploy/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import numpy as np
import pytest
import yaml

from modelyard.testing.cli_runner import run_cli
from modelyard.testing.server_process import ServerProcess, running_server
from modelyard.tracking import fluent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("backends") / "home"
    with running_server(home) as srv:
        mp = pytest.MonkeyPatch()
        mp.setenv("MODELYARD_HOME", str(srv.home))
        mp.setenv("MODELYARD_TRACKING_URI", srv.uri)
        mp.delenv("MODELYARD_TOKEN", raising=False)
        fluent._reset_for_tests()
        import pandas as pd
        from sklearn.linear_model import LogisticRegression

        import modelyard as my

        frame = pd.DataFrame(np.random.default_rng(0).normal(size=(100, 2)), columns=["a", "b"])
        with my.start_run():
            model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
            my.log_model(model, "model", input_example=frame[:3], registered_model_name="churn")
        try:
            yield srv
        finally:
            fluent._reset_for_tests()
            mp.undo()


def ok(server: ServerProcess, *args: str) -> str:
    done = run_cli(server, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_create_on_kubernetes_then_render(server: ServerProcess, tmp_path: Path) -> None:
    out = ok(server, "deploy", "create", "churn-k8s", "--model", "models:/churn/1",
             "--backend", "kubernetes", "--namespace", "ml", "--cpu", "500m", "--memory", "1Gi",
             "--min", "0", "--max", "20", "--autoscaler", "keda")  # fmt: skip
    assert "http://churn-k8s.ml.svc.cluster.local/" in out
    dep = json.loads(ok(server, "deploy", "show", "churn-k8s", "--json"))
    assert dep["backend"]["kind"] == "kubernetes"
    assert dep["backend"]["autoscaler"] == "keda"
    settings = dep["revisions"][0]["settings"]
    assert (settings["cpu"], settings["memory_mb"]) == (0.5, 1024)
    assert (dep["scaling"]["min_replicas"], dep["scaling"]["max_replicas"]) == (0, 20)

    folder = tmp_path / "manifests"
    assert "written to" in ok(server, "deploy", "render", "churn-k8s", "-o", str(folder))
    docs = [yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*.yaml"))]
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ScaledObject", "PodDisruptionBudget", "NetworkPolicy",
            "ServiceMonitor"} <= kinds  # fmt: skip
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    for doc in docs:
        if doc["apiVersion"] in ("v1", "apps/v1", "policy/v1", "networking.k8s.io/v1"):
            kubernetes_validate.validate(doc, "1.33", strict=True)

    # The same deployment for Knative, printed as one YAML stream.
    stream = ok(server, "deploy", "render", "churn-k8s", "--autoscaler", "knative")
    kinds = {d["kind"] for d in yaml.safe_load_all(stream) if d}
    assert "Service" in kinds
    assert "Deployment" not in kinds


CREATE = ("deploy", "create", "x", "--model", "models:/churn/1")


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        ((*CREATE, "--cpu", "lots"), 2, "cpu 'lots'"),
        ((*CREATE, "--memory", "1GB"), 2, "memory"),
        ((*CREATE, "--memory", "1Gi", "--memory-mb", "5"), 2, "not both"),
        ((*CREATE, "--backend", "ray"), 2, "--address"),
        ((*CREATE, "--backend", "kubernetes", "--min", "0", "--autoscaler", "hpa"), 2, "zero"),
        ((*CREATE, "--namespace", "ml"), 2, "--namespace applies only"),
        (("deploy", "render", "nope"), 1, "no deployment named 'nope'"),
        (("deploy", "render", "nope", "--backend", "ray"), 2, "only kubernetes"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    server: ServerProcess, args: tuple[str, ...], code: int, words: str
) -> None:
    done = run_cli(server, *args)
    assert done.returncode == code, done.stderr
    assert words in done.stderr
    assert "Traceback" not in done.stderr
    names = [d["name"] for d in json.loads(ok(server, "deploy", "ls", "--json"))]
    assert "x" not in names


def test_render_into_a_file_path_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    ok(server, "deploy", "create", "churn-plain", "--model", "models:/churn/1",
       "--backend", "kubernetes", "--min", "1")  # fmt: skip
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = run_cli(server, "deploy", "render", "churn-plain", "-o", str(blocker))
    assert done.returncode == 1
    assert "cannot write" in done.stderr
