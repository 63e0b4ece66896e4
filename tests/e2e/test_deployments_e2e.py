"""Deployments end to end: a real server, gateway, zygote and replica processes.

Each test starts ``modelyard server`` with its own gateway port, registers real models
through the SDK, deploys them and sends real HTTP traffic through the gateway. Asserts
are on behaviour (answers, failures, replica states, events), never on timings.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelyard.client import ModelyardClient
from modelyard.deploy.processes import pid_alive
from modelyard.serving._demo import FailingModel, free_port
from modelyard.testing.cli_runner import run_cli
from modelyard.testing.server_process import ServerProcess, reap_orphans, running_server
from modelyard.tracking import fluent

pytestmark = pytest.mark.slow

ROW = {"dataframe_split": {"columns": ["f0", "f1"], "data": [[0.5, -1.0]]}}
FAST = {"stable_window_s": 6.0, "panic_window_s": 2.0, "tick_s": 1.0}


class NotImportable:
    """Pickled by reference to this test module, which a replica cannot import."""

    def predict(self, data: object) -> object:
        return data


@dataclass
class Deployed:
    server: ServerProcess
    client: ModelyardClient
    gateway: str
    env: dict[str, str]

    def get(self, name: str) -> dict[str, Any]:
        return self.client.get_deployment("default", name)

    def events(self, name: str) -> list[dict[str, Any]]:
        return self.client.deployment_events("default", name, limit=10_000)

    def wait(self, name: str, check: Callable[[dict[str, Any]], bool], timeout_s: float = 60.0,
             what: str = "condition") -> dict[str, Any]:  # fmt: skip
        deadline = time.monotonic() + timeout_s
        dep = self.get(name)
        while not check(dep):
            if time.monotonic() > deadline:
                msgs = [e["message"] for e in self.events(name)][-15:]
                raise AssertionError(f"{what} not reached in {timeout_s}s: {dep}\n{msgs}")
            time.sleep(0.2)
            dep = self.get(name)
        return dep


def ready_replicas(dep: dict[str, Any], revision: int | None = None) -> int:
    return sum(
        1 for r in dep["replicas"]
        if r["state"] == "ready" and not r["standby"]
        and (revision is None or r["revision"] == revision)
    )  # fmt: skip


@pytest.fixture
def deployed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    port = free_port()
    env = {"MODELYARD_MAX_REPLICAS": "4"}
    with running_server(tmp_path / "home", "--gateway-port", str(port), env=env) as server:
        monkeypatch.setenv("MODELYARD_HOME", str(server.home))
        monkeypatch.setenv("MODELYARD_TRACKING_URI", server.uri)
        monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
        fluent._reset_for_tests()
        from sklearn.linear_model import LogisticRegression

        import modelyard as my

        rng = np.random.default_rng(0)
        x = rng.normal(size=(200, 2))
        y = (x[:, 0] > 0).astype(int)
        import pandas as pd

        frame = pd.DataFrame(x, columns=["f0", "f1"])
        with my.start_run():
            models: list[tuple[object, str | None]] = [
                (LogisticRegression().fit(frame, y), None),
                (LogisticRegression(C=0.1).fit(frame, y), None),
                (FailingModel(), "pyfunc"),
                (NotImportable(), "pyfunc"),
            ]
            for i, (model, flavor) in enumerate(models, start=1):
                my.log_model(model, f"model{i}", input_example=frame[:3], flavor=flavor,
                             registered_model_name="churn")  # fmt: skip
        my.set_alias("churn", "production", 1)
        session = fluent._get()
        try:
            yield Deployed(server, session.client, f"http://127.0.0.1:{port}", env)
        finally:
            fluent._reset_for_tests()
    # A test that killed the server leaves its gateway and replicas (own sessions) behind.
    reap_orphans(tmp_path / "home")


@dataclass
class Load:
    """Closed-loop load: ``concurrency`` threads POSTing as fast as answers come."""

    url: str
    concurrency: int
    body: dict[str, Any] = field(default_factory=lambda: ROW)
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _worker(self) -> None:
        with httpx.Client(timeout=30.0) as client:
            while not self._stop.is_set():
                try:
                    r = client.post(self.url, json=self.body)
                    good = r.status_code == 200
                    why = f"{r.status_code} {r.text[:200]}"
                except httpx.HTTPError as exc:
                    good, why = False, repr(exc)
                with self._lock:
                    if good:
                        self.ok += 1
                    else:
                        self.failures.append(why)

    @contextlib.contextmanager
    def running(self) -> Iterator[Load]:
        threads = [threading.Thread(target=self._worker) for _ in range(self.concurrency)]
        for t in threads:
            t.start()
        try:
            yield self
        finally:
            self._stop.set()
            for t in threads:
                t.join()


def test_scale_from_zero_serves_then_returns_to_zero(deployed: Deployed) -> None:
    c = deployed.client
    dep = c.create_deployment("default", "churn-api", "models:/churn@production", scaling={
        "min_replicas": 0, "max_replicas": 2, "target_concurrency": 4, "idle_grace_s": 2,
        **FAST,
    })  # fmt: skip
    assert dep["endpoint"] == f"{deployed.gateway}/churn-api/"
    # The first revision is proven by one replica, then scales to zero after the grace.
    deployed.wait("churn-api", lambda d: d["revisions"][0]["state"] == "ready", what="ready")
    deployed.wait("churn-api", lambda d: not d["replicas"], timeout_s=40, what="zero")
    r = httpx.post(f"{dep['endpoint']}invocations", json=ROW, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["x-modelyard-revision"] == "1"
    oip = httpx.post(
        f"{dep['endpoint']}v2/models/churn/infer",
        json={"inputs": [{"name": "f0", "shape": [1], "datatype": "FP64", "data": [0.5]},
                         {"name": "f1", "shape": [1], "datatype": "FP64", "data": [-1.0]}]},
        timeout=30,
    )  # fmt: skip
    assert oip.status_code == 200, oip.text
    events = deployed.events("churn-api")
    woken = [e for e in events if e["kind"] == "scale" and e["data"].get("woken")]
    assert woken
    assert woken[0]["data"]["actual"] == 0
    assert woken[0]["data"]["desired"] >= 1
    deployed.wait("churn-api", lambda d: not d["replicas"], timeout_s=40, what="zero again")
    assert httpx.get(f"{deployed.gateway}/nope/x", timeout=5).status_code == 404


def test_sigkill_a_replica_under_load_fails_no_request(deployed: Deployed) -> None:
    c = deployed.client
    c.create_deployment("default", "churn-api", "models:/churn/1", scaling={
        "min_replicas": 2, "max_replicas": 3, "target_concurrency": 16, **FAST,
    })  # fmt: skip
    dep = deployed.wait("churn-api", lambda d: ready_replicas(d) >= 2, what="2 ready")
    load = Load(f"{dep['endpoint']}invocations", concurrency=16)
    with load.running():
        time.sleep(2)
        victim = next(r for r in dep["replicas"] if r["state"] == "ready")
        os.kill(victim["pid"], signal.SIGKILL)
        time.sleep(2)
        deployed.wait("churn-api", lambda d: ready_replicas(d) >= 2
                      and victim["id"] not in {r["id"] for r in d["replicas"]},
                      what="replacement")  # fmt: skip
        time.sleep(1)
    assert load.failures == []
    assert load.ok > 100
    assert any("exited unexpectedly" in e["message"] for e in deployed.events("churn-api"))


def test_canary_and_rolling_updates_fail_no_request(deployed: Deployed) -> None:
    c = deployed.client
    c.create_deployment("default", "churn-api", "models:/churn/1", scaling={
        "min_replicas": 1, "max_replicas": 2, "target_concurrency": 16, **FAST,
    })  # fmt: skip
    dep = deployed.wait("churn-api", lambda d: ready_replicas(d) >= 1, what="ready")
    load = Load(f"{dep['endpoint']}invocations", concurrency=8)
    with load.running():
        # This test is about requests, not the p99 gate (unit-tested in test_rollout.py): a
        # fresh canary on a loaded 2-core CI host once showed 23 ms against 12 ms and was
        # rolled back, so the gate is opened wide here.
        c.update_deployment("default", "churn-api", model="models:/churn/2", strategy="canary",
                            steps=(50, 100), step_interval_s=2.0, max_p99_ratio=20.0)  # fmt: skip
        deployed.wait("churn-api", lambda d: d["rollout"]["phase"] == "done", timeout_s=60,
                      what="canary done")  # fmt: skip
        c.update_deployment("default", "churn-api", model="models:/churn/1", strategy="rolling")
        deployed.wait("churn-api", lambda d: d["rollout"]["phase"] == "done", timeout_s=60,
                      what="rolling done")  # fmt: skip
        deployed.wait("churn-api", lambda d: {r["revision"] for r in d["replicas"]} == {3},
                      what="old replicas drained")  # fmt: skip
    assert load.failures == []
    assert load.ok > 100
    dep = deployed.get("churn-api")
    assert dep["traffic"] == {"3": 100}
    assert dep["stable_revision"] == 3
    assert dep["previous_stable"] == 2
    messages = [e["message"] for e in deployed.events("churn-api") if e["kind"] == "rollout"]
    assert any("promoted" in m for m in messages)
    assert any("rolling update done" in m for m in messages)


def test_canary_that_errors_is_rolled_back(deployed: Deployed) -> None:
    c = deployed.client
    c.create_deployment("default", "churn-api", "models:/churn/1", scaling={
        "min_replicas": 1, "max_replicas": 2, "target_concurrency": 16, **FAST,
    })  # fmt: skip
    dep = deployed.wait("churn-api", lambda d: ready_replicas(d) >= 1, what="ready")
    refused = {"dataframe_split": {"columns": ["f0", "f1"], "data": [[666.0, 1.0]]}}
    load = Load(f"{dep['endpoint']}invocations", concurrency=4, body=refused)
    with load.running():
        c.update_deployment("default", "churn-api", model="models:/churn/3", strategy="canary",
                            steps=(50, 100), step_interval_s=2.0)  # fmt: skip
        dep = deployed.wait("churn-api", lambda d: d["rollout"]["phase"] == "rolled_back",
                            timeout_s=60, what="rollback")  # fmt: skip
    assert dep["traffic"] == {"1": 100}
    assert dep["stable_revision"] == 1
    assert load.failures  # the canary's errors reached clients during its step
    rollback = [e for e in deployed.events("churn-api") if "rollback" in e["message"]]
    assert rollback
    assert "error rate" in rollback[0]["message"]


def test_a_model_that_fails_to_load_keeps_traffic_on_the_old_revision(
    deployed: Deployed,
) -> None:
    c = deployed.client
    c.create_deployment("default", "churn-api", "models:/churn/1", scaling={
        "min_replicas": 1, "max_replicas": 2, **FAST,
    })  # fmt: skip
    deployed.wait("churn-api", lambda d: ready_replicas(d) >= 1, what="ready")
    c.update_deployment("default", "churn-api", model="models:/churn/4", strategy="canary")
    dep = deployed.wait("churn-api", lambda d: d["revisions"][-1]["state"] == "failed",
                        what="failed revision")  # fmt: skip
    assert (
        "NotImportable" in dep["revisions"][-1]["error"]
        or "test_deployments" in (dep["revisions"][-1]["error"])
    )
    dep = deployed.wait("churn-api", lambda d: d["rollout"]["phase"] == "rolled_back",
                        what="rollout ended")  # fmt: skip
    assert dep["traffic"] == {"1": 100}
    r = httpx.post(f"{dep['endpoint']}invocations", json=ROW, timeout=30)
    assert r.status_code == 200
    assert r.headers["x-modelyard-revision"] == "1"


def test_shadow_gets_copies_and_cli_shows_everything(deployed: Deployed) -> None:
    c = deployed.client
    c.create_deployment("default", "churn-api", "models:/churn/1", scaling={
        "min_replicas": 1, "max_replicas": 2, **FAST,
    })  # fmt: skip
    deployed.wait("churn-api", lambda d: ready_replicas(d) >= 1, what="ready")
    c.set_shadow("default", "churn-api", 2, 100.0)
    deployed.wait("churn-api", lambda d: ready_replicas(d, 2) >= 1, what="shadow ready")
    dep = deployed.get("churn-api")
    for _ in range(30):
        r = httpx.post(f"{dep['endpoint']}invocations", json=ROW, timeout=30)
        assert r.status_code == 200
        assert r.headers["x-modelyard-revision"] == "1"
    srv = deployed.server
    shown = run_cli(srv, "deploy", "show", "churn-api", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert {"endpoint", "revisions", "replicas"} <= set(doc)
    assert {"pid", "port", "state", "revision"} <= set(doc["replicas"][0])
    listed = run_cli(srv, "deploy", "ls")
    assert listed.returncode == 0
    assert "churn-api" in listed.stdout
    events = run_cli(srv, "deploy", "events", "churn-api", "--json")
    assert events.returncode == 0
    assert json.loads(events.stdout)
    bad = run_cli(srv, "deploy", "traffic", "churn-api", "1=60", "2=30")
    assert bad.returncode != 0
    assert "sum to 100" in bad.stderr + bad.stdout
    gone = run_cli(srv, "deploy", "delete", "churn-api", "--wait")
    assert gone.returncode == 0, gone.stderr
    assert c.list_deployments("default") == []


def test_a_restarted_server_adopts_live_replicas(deployed: Deployed, tmp_path: Path) -> None:
    c = deployed.client
    c.create_deployment("default", "churn-api", "models:/churn/1", scaling={
        "min_replicas": 1, "max_replicas": 2, **FAST,
    })  # fmt: skip
    dep = deployed.wait("churn-api", lambda d: ready_replicas(d) >= 1, what="ready")
    replica = next(r for r in dep["replicas"] if r["state"] == "ready")
    # The gateway routes to it (the route push follows the ready mark within one pass).
    first = httpx.post(f"{dep['endpoint']}invocations", json=ROW, timeout=30)
    assert first.status_code == 200
    deployed.server.process.send_signal(signal.SIGKILL)
    deployed.server.process.wait()
    assert pid_alive(replica["pid"])  # replicas and the gateway outlive a crashed server
    r = httpx.post(f"{dep['endpoint']}invocations", json=ROW, timeout=30)
    assert r.status_code == 200
    gateway_port = deployed.gateway.rsplit(":", 1)[1]
    with running_server(deployed.server.home, "--gateway-port", gateway_port,
                        env=deployed.env, port=deployed.server.port):  # fmt: skip
        after = deployed.wait("churn-api", lambda d: ready_replicas(d) >= 1, what="adopted")
        assert replica["id"] in {x["id"] for x in after["replicas"]}
        r = httpx.post(f"{dep['endpoint']}invocations", json=ROW, timeout=30)
        assert r.status_code == 200
    # A graceful stop stops what it runs.
    deadline = time.monotonic() + 30
    while pid_alive(replica["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(replica["pid"])


def test_a_gateway_that_dies_is_restarted_with_its_routes(deployed: Deployed) -> None:
    c = deployed.client
    c.create_deployment("default", "churn-api", "models:/churn/1", scaling={
        "min_replicas": 1, "max_replicas": 2, **FAST,
    })  # fmt: skip
    dep = deployed.wait("churn-api", lambda d: ready_replicas(d) >= 1, what="ready")
    state = json.loads((deployed.server.home / "run" / "gateway.json").read_text())
    os.kill(state["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.HTTPError):
            r = httpx.post(f"{dep['endpoint']}invocations", json=ROW, timeout=5)
            if r.status_code == 200:
                break
        assert time.monotonic() < deadline, "the gateway did not come back"
        time.sleep(0.2)
    restarted = json.loads((deployed.server.home / "run" / "gateway.json").read_text())
    assert restarted["pid"] != state["pid"]
    assert any(e["kind"] == "gateway" for e in deployed.events("churn-api"))
