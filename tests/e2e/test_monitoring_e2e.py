"""Monitoring end to end: a real server (two API workers), gateway and replica; a real
Prometheus binary scraping all three; predictions logged under the gateway's request ids
and labels joined to them."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelyard.client import ModelyardClient
from modelyard.serving._demo import free_port
from modelyard.testing.cli_runner import run_cli
from modelyard.testing.prometheus import ScrapeTarget, prometheus_server
from modelyard.testing.server_process import ServerProcess, running_server
from modelyard.tracking import fluent

pytestmark = pytest.mark.slow

P = "default"
COLUMNS = ["f0", "f1"]


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ServerProcess, str]]:
    gateway_port = free_port()
    with running_server(
        tmp_path / "home",
        "--gateway-port",
        str(gateway_port),
        "--workers",
        "2",
        env={"MODELYARD_MONITOR_INTERVAL_S": "1"},
    ) as server:
        monkeypatch.setenv("MODELYARD_HOME", str(server.home))
        monkeypatch.setenv("MODELYARD_TRACKING_URI", server.uri)
        monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
        fluent._reset_for_tests()
        import pandas as pd
        from sklearn.linear_model import LogisticRegression

        import modelyard as my

        rng = np.random.default_rng(0)
        frame = pd.DataFrame(rng.normal(size=(300, 2)), columns=COLUMNS)
        y = (frame["f0"] > 0).astype(int)
        with my.start_run():
            my.log_model(
                LogisticRegression().fit(frame, y),
                "model",
                input_example=frame[:3],
                registered_model_name="churn",
            )
        my.set_alias("churn", "production", 1)
        fluent._reset_for_tests()
        try:
            yield server, f"http://127.0.0.1:{gateway_port}"
        finally:
            fluent._reset_for_tests()


def test_prometheus_scrapes_server_gateway_and_replica(
    served: tuple[ServerProcess, str],
) -> None:
    server, gateway = served
    with ModelyardClient(server.uri, server.admin_token) as client:
        client.create_deployment(
            P, "churn-api", "models:/churn@production", scaling={"min_replicas": 1}
        )
        deadline = time.monotonic() + 90
        while True:
            dep = client.get_deployment(P, "churn-api")
            ready = [r for r in dep["replicas"] if r["state"] == "ready"]
            if ready:
                break
            assert time.monotonic() < deadline, dep
            time.sleep(0.2)
        replica_port = ready[0]["port"]
        ids = []
        with httpx.Client(base_url=f"{gateway}/churn-api", timeout=30) as http:
            for i in range(200):
                body = {"dataframe_split": {"columns": COLUMNS, "data": [[i / 100 - 1, 0.5]]}}
                headers = {"x-request-id": f"req-{i}"} if i % 2 else {}
                r = http.post("/invocations", json=body, headers=headers)
                assert r.status_code == 200, r.text
                # The gateway keeps a caller's id and makes one up otherwise; either way
                # the answer says which.
                rid = r.headers["x-request-id"]
                assert rid == f"req-{i}" if i % 2 else rid
                ids.append((rid, r.json()["predictions"][0]))
        for _ in range(20):  # API requests spread over both workers
            client.get_deployment(P, "churn-api")

        jobs = {
            "server": [ScrapeTarget(server.uri.removeprefix("http://"))],
            "gateway": [ScrapeTarget(gateway.removeprefix("http://"), "/-/metrics")],
            "replica": [ScrapeTarget(f"127.0.0.1:{replica_port}")],
        }
        with prometheus_server(jobs) as prom:
            prom.wait_for(
                'sum(modelyard_gateway_requests_total{deployment="churn-api",code="200"})',
                lambda r: bool(r) and float(r[0]["value"][1]) == 200,
            )
            prom.wait_for(
                "sum(modelyard_serving_requests_total)",
                lambda r: bool(r) and float(r[0]["value"][1]) >= 200,
            )
            prom.wait_for(
                'modelyard_deployment_replicas{deployment="churn-api",state="ready"}',
                lambda r: bool(r) and float(r[0]["value"][1]) >= 1,
            )
            # One view of both API workers: every GET of the deployment is counted,
            # whichever worker answered it.
            total = prom.wait_for(
                'sum(modelyard_http_requests_total{route="/api/v1/projects/{project}/'
                'deployments/{name}",method="GET"})',
                lambda r: bool(r) and float(r[0]["value"][1]) >= 20,
            )
            assert float(total[0]["value"][1]) >= 20
            assert {t["health"] for t in prom.targets()} == {"up"}

        # The replica logged every prediction under the gateway's ids; labels join to them.
        labels = [{"request_id": rid, "label": int(pred)} for rid, pred in ids[:100]]
        result = client.send_feedback(
            P, "churn-api", json.dumps({"labels": labels}).encode(), "application/json"
        )
        assert (result["rows"], result["matched"]) == (100, 100)
        assert result["quality"]["accuracy"] == 1.0
        shown = client.monitor_show(P, "churn-api")
        assert shown["log"]["rows"] == 200
        # The gateway's own log holds the same requests (and, in general, its errors).
        assert shown["gateway_log"]["rows"] >= 200
        assert shown["live"] is not None
    _cli_walk(server, tmp_dir=server.home.parent)


def _cli_walk(server: ServerProcess, tmp_dir: Path) -> None:
    """The CLI over the same server: answers, files, and clean errors."""
    shown = run_cli(server, "monitor", "show", "churn-api", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["log"]["rows"] == 200
    assert run_cli(server, "monitor", "show", "churn-api").returncode == 0
    added = run_cli(
        server,
        "alerts",
        "add",
        "churn-api",
        "--rule",
        "p99_ms > 50 for 2m",
        "--webhook",
        "http://127.0.0.1:9/hook",
    )
    assert added.returncode == 0, added.stderr
    assert "whsec_" in added.stdout
    bad = run_cli(server, "alerts", "add", "churn-api", "--rule", "p99_ms >> 50")
    assert bad.returncode != 0
    assert "'>>'" in bad.stderr
    assert "Traceback" not in bad.stderr + bad.stdout
    listed = run_cli(server, "alerts", "ls", "churn-api", "--json")
    assert [r["rule"] for r in json.loads(listed.stdout)] == ["p99_ms > 50 for 2m"]
    assert run_cli(server, "alerts", "history", "churn-api").returncode == 0
    assert "drift:<feature>" in run_cli(server, "alerts", "metrics").stdout
    # No dataset version is linked to this model: a clear error, not a traceback.
    drift = run_cli(server, "monitor", "drift", "churn-api", "--window", "1h")
    assert drift.returncode != 0
    assert "lineage" in drift.stderr
    assert "Traceback" not in drift.stderr
    rules, board = tmp_dir / "rules.yml", tmp_dir / "dashboard.json"
    exported = run_cli(
        server, "monitor", "export", "--prometheus-rules", str(rules), "--grafana", str(board)
    )
    assert exported.returncode == 0, exported.stderr
    check = subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(board.read_text())["panels"]
