"""``modelyard quickstart`` end to end: real server, gateway, replicas and HTTP traffic.

The quickstart runs as a user would start it (``modelyard quickstart``, here as
``python -m modelyard quickstart``, a separate process) with a shortened traffic walk.
What it did is checked through the API — runs, registry, deployment events, lineage —
never on the text it printed; only the failure tests read its error line, because the
message is the behaviour under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.client import ModelyardClient
from modelyard.core.errors import ModelyardError
from modelyard.core.tracking import RunStatus
from modelyard.credentials import read_credentials
from modelyard.deploy.processes import pid_alive
from modelyard.deploy.signals import GatewaySnapshot
from modelyard.testing._ports import free_port
from modelyard.testing.server_process import ServerProcess, running_server

pytestmark = pytest.mark.slow

P = "default"
RUN_TIMEOUT_S = 240


def quickstart_env(home: Path, uri: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "MODELYARD_HOME": str(home), "MODELYARD_TRACKING_URI": uri,
           "COLUMNS": "120", **extra}  # fmt: skip
    for key in ("MODELYARD_TOKEN", "MODELYARD_PROJECT"):
        if key not in extra:
            env.pop(key, None)
    return env


def run_quickstart(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "modelyard", "quickstart", "--traffic-scale", "0.3", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("quickstart") / "home"
    with running_server(home, "--gateway-port", str(free_port())) as proc:
        yield proc


def scale_events(client: ModelyardClient) -> list[dict[str, Any]]:
    events = client.deployment_events(P, "quickstart-api", limit=10_000)
    return [e for e in events if e["kind"] == "scale"]


def check_walk(client: ModelyardClient, result: dict[str, Any], n: int, after_event: int) -> None:
    """What the n-th walk must have left on the server, read through the API."""
    experiment = client.find_experiment(P, "quickstart")
    assert experiment is not None
    runs = client.search_runs([experiment.id]).items
    assert len(runs) == 3 * n
    mine = [r for r in runs if r.id in {s["run_id"] for s in result["runs"]}]
    assert sorted(r.name for r in mine) == ["gradient-boosting", "logistic-regression",
                                            "random-forest"]  # fmt: skip
    for run in mine:
        assert run.status is RunStatus.FINISHED
        assert {"accuracy", "f1", "roc_auc"} <= set(run.metrics)
        assert 0.8 < run.metrics["roc_auc"].value <= 1.0
        assert run.params["dataset"] == f"quickstart-data@v{n}"
        paths = {a.path for a in client.list_run_artifacts(run.id)}
        assert {"plots/roc_curve.png", "model/modelyard.yaml"} <= paths
    best = max(mine, key=lambda r: r.metrics["roc_auc"].value)
    version = client.get_version(P, "quickstart-model", "production")
    assert version.version == n
    assert version.source_run_id == best.id == result["best_run_id"]
    data = client.get_dataset_version(P, f"quickstart-data@v{n}")
    assert data.profile["tables"]["breast_cancer.parquet"]["num_rows"] == 569

    dep = client.get_deployment(P, "quickstart-api")
    assert dep["traffic"] == {str(n): 100}
    assert dep["revisions"][-1]["model_version"] == n
    scale = [e for e in scale_events(client) if e["id"] > after_event]
    ups = [e for e in scale if e["data"]["desired"] > e["data"]["actual"] >= 1]
    assert ups, [e["message"] for e in scale]  # a real scale-up, not only a wake from zero
    zero = [e for e in scale if e["data"]["desired"] == 0 < e["data"]["actual"]]
    assert zero
    assert any(z["id"] > ups[0]["id"] for z in zero)  # back to zero after the ramp
    assert result["traffic"]["scaled_to_zero"] is True
    assert result["traffic"]["requests_sent"] > 0
    assert result["traffic"]["max_replicas_seen"] >= 2

    # Step 6: shifted traffic made the drift alert fire, through the server's monitor loop.
    cost = result["cost"]  # replicas ran and answered, so the ledger bills them
    assert cost["currency"] == "USD"
    assert cost["cost"] > 0
    assert cost["replica_hours"] > 0
    assert cost["requests"] > 0
    monitoring = result["monitoring"]
    assert monitoring["fired"] is True
    assert monitoring["drift_share"] > 0.3
    assert "mean radius" in monitoring["drifted_features"]
    history = client.alert_history(P, "quickstart-api", kind="firing")
    assert any("drift_share > 0.3" in e["message"] for e in history)
    shown = client.monitor_show(P, "quickstart-api")
    assert shown["log"]["rows"] > 0
    assert shown["drift"]["reference"] == f"quickstart-data@v{n}"

    # Step 9: every page of the story answered 200 as HTML.
    pages = {page["what"]: page for page in result["ui_pages"]}
    assert set(pages) == {
        "runs",
        "best run",
        "model",
        "deployment",
        "monitoring",
        "cost",
        "lineage",
    }
    assert all(page["size"] > 1000 for page in pages.values())
    assert client.get_page(pages["model"]["path"]).status_code == 200

    # Step 10: a TPE sweep of random forests and the pipeline run twice, the second
    # entirely from the cache.
    tuning = result["tuning"]
    assert tuning["trials"] == 8
    assert 0.9 < tuning["best_value"] <= 1.0
    assert set(tuning["best_params"]) == {"n_estimators", "max_depth"}
    study = client.get_run(tuning["study_run_id"])
    assert study.tags["modelyard.study.state"] == "COMPLETED"
    assert tuning["cached_steps"][-1] == tuning["steps"] == 3
    last = client.get_run(tuning["pipeline_runs"][-1])
    assert last.tags["modelyard.pipeline.state"] == "SUCCEEDED"

    # Step 11: the deployment rendered for Kubernetes into MODELYARD_HOME, nothing applied.
    manifests = result["manifests"]
    assert {"Deployment", "Service", "ScaledObject", "PodDisruptionBudget", "NetworkPolicy",
            "ServiceMonitor"} <= set(manifests["kinds"])  # fmt: skip
    written = sorted(p.name for p in Path(manifests["folder"]).glob("*.yaml"))
    assert written == sorted(manifests["files"])

    graph = client.lineage(P, "deployment", "quickstart-api", direction="up")
    labels = {(node["kind"], node["label"]) for node in graph["nodes"]}
    assert ("dataset_version", f"quickstart-data@v{n}") in labels
    assert ("model_version", f"quickstart-model/{n}") in labels
    assert {"dataset_version", "run", "model_version", "deployment"} == {k for k, _ in labels}


def test_quickstart_walks_the_lifecycle_and_runs_again(server: ServerProcess) -> None:
    with ModelyardClient(server.uri, server.admin_token) as client:
        walk_twice(client, server)


def walk_twice(client: ModelyardClient, server: ServerProcess) -> None:
    env = quickstart_env(server.home, server.uri)

    first = run_quickstart(env, "--keep-running", "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    result = json.loads(first.stdout)
    assert result["started_server"] is False
    assert result["rolled_out"] is False
    check_walk(client, result, 1, after_event=0)
    assert result["traffic"]["requests_failed"] == 0

    # Again: new versions and runs, and a rolling update of the existing deployment.
    last_event = client.deployment_events(P, "quickstart-api", limit=10_000)[-1]["id"]
    second = run_quickstart(env, "--json")
    assert second.returncode == 0, second.stderr[-3000:]
    result = json.loads(second.stdout)
    assert result["rolled_out"] is True
    check_walk(client, result, 2, after_event=last_event)
    rollout = [e["message"] for e in client.deployment_events(P, "quickstart-api", kind="rollout")]
    assert any("rolling update done: revision 2" in m for m in rollout), rollout
    # It did not create the deployment this time, so it left it in place.
    assert client.get_deployment(P, "quickstart-api")["status"] == "active"


def test_a_rejected_token_fails_step_1_with_a_clear_message(
    server: ServerProcess, tmp_path: Path
) -> None:
    env = quickstart_env(tmp_path / "other-home", server.uri, MODELYARD_TOKEN="myt_x_bogus")
    proc = run_quickstart(env)
    assert proc.returncode == 1
    assert "step 1/11 (server) failed: the server at" in proc.stderr
    assert "rejected the credentials" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_failing_step_stops_the_server_it_started(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    env = quickstart_env(tmp_path / "home", uri, MODELYARD_PROJECT="no-such-project")
    proc = run_quickstart(env)
    assert proc.returncode == 1
    assert "step 1/11 (server) failed: project 'no-such-project' does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert (tmp_path / "home" / "logs" / "quickstart-server.log").exists()  # it did start one
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{uri}/health", timeout=2)


def test_ctrl_c_during_traffic_stops_server_gateway_and_replicas(tmp_path: Path) -> None:
    home, uri = tmp_path / "home", f"http://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "modelyard", "quickstart", "--traffic-scale", "3"]
    with (tmp_path / "out.log").open("wb") as log:
        # SIGINT as a terminal sends it: a test run started in the background (a shell's
        # `cmd &`) has SIGINT ignored, children inherit that, and Python then never
        # raises KeyboardInterrupt.
        proc = subprocess.Popen(command, env=quickstart_env(home, uri), stdout=log,
                                stderr=subprocess.STDOUT, preexec_fn=_default_sigint)  # fmt: skip
    try:
        dep = wait_for_traffic(home, uri, proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            _stop_processes_of(home)  # the server it started outlives a SIGKILL
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{uri}/health", timeout=2)
    with pytest.raises(httpx.TransportError):
        httpx.get(dep["endpoint"], timeout=2)
    pids = [r["pid"] for r in dep["replicas"]]
    assert pids
    assert not [pid for pid in pids if pid_alive(pid)]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop_processes_of(home: Path) -> None:
    """SIGTERM the servers this test's quickstart started (they have its MODELYARD_HOME)."""
    marker = f"MODELYARD_HOME={home}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
            if (
                marker in environ
                and b"modelyard" in cmdline
                and b" server" in cmdline.replace(b"\0", b" ")
            ):
                os.kill(int(entry.name), signal.SIGTERM)


def wait_for_traffic(home: Path, uri: str, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The deployment once the quickstart's traffic flows through the gateway (per the
    gateway's own counters) to a ready replica."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the quickstart ended before its traffic phase"
        with contextlib.suppress(ModelyardError, httpx.HTTPError, OSError, ValueError, KeyError):
            if gateway_arrivals(home) >= 200:
                token = (read_credentials(home / "credentials") or {})["token"]
                with ModelyardClient(uri, token) as client:
                    dep = client.get_deployment(P, "quickstart-api")
                if [r for r in dep["replicas"] if r["state"] == "ready"]:
                    return dep
        time.sleep(0.5)
    raise AssertionError("the quickstart's traffic never reached the gateway")


def gateway_arrivals(home: Path) -> int:
    """Requests the gateway has taken for quickstart-api, from its control API."""
    state = json.loads((home / "run" / "gateway.json").read_text())
    stats = httpx.get(f"http://127.0.0.1:{state['port']}/-/stats", timeout=2,
                      headers={"authorization": f"Bearer {state['secret']}"})  # fmt: skip
    snapshot = GatewaySnapshot.parse(stats.json())
    return sum(c.arrivals for (name, _), c in snapshot.revisions.items() if "quickstart" in name)
