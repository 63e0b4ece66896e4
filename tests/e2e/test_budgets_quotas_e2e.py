"""Budgets and quotas end to end: a real server (budget loop every second), gateway,
zygote and replica processes, the real ledger, the CLI, and a signed webhook receiver on
127.0.0.1. Asserts are on behaviour (answers, refusals, events, notifications), never
on timings."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelyard.client import ModelyardClient
from modelyard.core.errors import QuotaExceeded
from modelyard.notify import verify_signature
from modelyard.serving._demo import free_port
from modelyard.testing.cli_runner import run_cli
from modelyard.testing.server_process import ServerProcess, running_server
from modelyard.tracking import fluent

pytestmark = pytest.mark.slow

ROW = {"dataframe_split": {"columns": ["f0", "f1"], "data": [[0.5, -1.0]]}}
QUICK = {"idle_grace_s": 1, "stable_window_s": 2.0, "panic_window_s": 1.0, "tick_s": 0.5,
         "queue_timeout_s": 3.0}  # fmt: skip


class Hooks:
    """Budget notifications received, with whether their signature checked out."""

    def __init__(self) -> None:
        self.secret = ""
        self.payloads: list[tuple[dict[str, Any], bool]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                valid = verify_signature(
                    hooks.secret,
                    self.headers["X-Modelyard-Timestamp"],
                    body,
                    self.headers["X-Modelyard-Signature"],
                    now_s=time.time(),
                )
                hooks.payloads.append((json.loads(body), valid))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/budget"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ServerProcess, ModelyardClient, str]]:
    port = free_port()
    env = {"MODELYARD_MAX_REPLICAS": "4", "MODELYARD_BUDGET_INTERVAL_S": "1"}
    with running_server(tmp_path / "home", "--gateway-port", str(port), env=env) as server:
        monkeypatch.setenv("MODELYARD_HOME", str(server.home))
        monkeypatch.setenv("MODELYARD_TRACKING_URI", server.uri)
        monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
        fluent._reset_for_tests()
        import pandas as pd
        from sklearn.linear_model import LogisticRegression

        import modelyard as my

        rng = np.random.default_rng(0)
        frame = pd.DataFrame(rng.normal(size=(200, 2)), columns=["f0", "f1"])
        with my.start_run():
            model = LogisticRegression().fit(frame, (frame["f0"] > 0).astype(int))
            my.log_model(model, "model", input_example=frame[:3], registered_model_name="churn")
        try:
            yield server, fluent._get().client, f"http://127.0.0.1:{port}"
        finally:
            fluent._reset_for_tests()


def wait(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout_s}s")
        time.sleep(0.2)


def cli(server: ServerProcess, *args: str) -> str:
    done = run_cli(server, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_quota_holds_deploys_and_scale_ups_and_the_budget_notifies(
    served: tuple[ServerProcess, ModelyardClient, str],
) -> None:
    server, client, gateway = served

    def replicas(name: str) -> list[dict[str, Any]]:
        return list(client.get_deployment("default", name)["replicas"])

    def ready(name: str) -> int:
        return sum(1 for r in replicas(name) if r["state"] == "ready")

    assert "replicas" in cli(server, "quota", "set", "--max-replicas", "2")
    client.create_deployment("default", "a", "models:/churn/1",
                             scaling={"min_replicas": 1, "max_replicas": 1})  # fmt: skip
    client.create_deployment("default", "b", "models:/churn/1",
                             scaling={"min_replicas": 0, "max_replicas": 1, **QUICK})  # fmt: skip
    wait("a ready", lambda: ready("a") == 1)
    # Deploy time: a third deployment does not fit beside a and b's first replica.
    with pytest.raises(QuotaExceeded, match="max_replicas 2"):
        client.create_deployment("default", "c", "models:/churn/1")
    refused = run_cli(server, "deploy", "create", "c", "--model", "models:/churn/1")
    assert refused.returncode != 0
    assert "quota" in refused.stderr
    assert "Traceback" not in refused.stderr
    # b proves its model, then scales to zero; the quota is lowered to what a uses.
    wait("b ready", lambda: client.get_deployment("default", "b")["revisions"][0]["state"]
         == "ready")  # fmt: skip
    cli(server, "quota", "set", "--max-replicas", "1")
    wait("b at zero", lambda: not replicas("b"))
    # Scale time: a request wakes b, and the controller starts nothing (503 after the
    # queue timeout), with a quota event; a keeps serving.
    held = httpx.post(f"{gateway}/b/invocations", json=ROW, timeout=30)
    assert held.status_code == 503, held.text
    events = client.deployment_events("default", "b", kind="quota")
    assert events
    assert "not starting replicas" in events[0]["message"]
    assert ready("a") == 1
    assert httpx.post(f"{gateway}/a/invocations", json=ROW, timeout=30).status_code == 200
    # Room again: b serves.
    cli(server, "quota", "set", "--max-replicas", "2")
    woke = httpx.post(f"{gateway}/b/invocations", json=ROW, timeout=60)
    assert woke.status_code == 200, woke.text
    shown = json.loads(cli(server, "quota", "show", "--json"))
    assert shown["usage"]["replicas"] == 2

    # A budget far below what a replica costs: both thresholds are crossed at once.
    hooks = Hooks()
    try:
        out = cli(server, "budget", "set", "--monthly-usd", "0.000001", "--alert-at", "50,100",
                  "--webhook", hooks.url)  # fmt: skip
        hooks.secret = out.split("verify X-Modelyard-Signature with it): ")[1].strip()
        wait("notifications", lambda: {(p["threshold"], p["kind"]) for p, _ in hooks.payloads}
             >= {(50.0, "actual"), (100.0, "actual")})  # fmt: skip
    finally:
        hooks.close()
    assert all(valid for _, valid in hooks.payloads)
    assert all(p["event"] == "budget" and p["currency"] == "USD" for p, _ in hooks.payloads)
    assert len({p["id"] for p, _ in hooks.payloads}) == len(hooks.payloads)  # once each
    view = json.loads(cli(server, "budget", "show", "--json"))
    assert view["spent"] > 0.000001
    assert all(t["actual_at_ms"] is not None for t in view["thresholds"])
    history = cli(server, "budget", "history")
    assert "crossed" in history
    assert "notify" in history
    assert "default" in cli(server, "budget", "ls")
