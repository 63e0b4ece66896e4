"""The monitoring API over a real store, artifact folder and prediction-log spool.

A model is registered from a run that read a dataset version (lineage); its deployment's
"replica" is a real :class:`PredictionLog` writing spool files, so drift, feedback and
alert evaluation run on what a replica would write. No process is started: the monitor
loop's passes are driven by hand with a fake clock and fake gateway counters; the
webhook receiver is a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelyard.core.clock import FakeClock
from modelyard.core.entities import ArtifactEntry, Role
from modelyard.deploy.signals import GatewaySnapshot
from modelyard.models.signature import ColumnSchema, ColumnSpec, Signature
from modelyard.monitor.loop import MonitorLoop
from modelyard.notify import Dispatcher
from modelyard.serving.predlog import PredictionLog, PredictionLogOptions, revision_spool
from modelyard.testing.harness import Api

BASE = "/api/v1/projects/default/deployments"
FEATURES = ("age", "income", "score", "tenure")


def _table(rng: np.random.Generator, n: int, shift: float = 0.0) -> pa.Table:
    return pa.table(
        {
            "age": rng.normal(40 + shift * 10, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "score": rng.uniform(0, 1, n),
            "tenure": rng.exponential(5, n),
            "label": rng.integers(0, 2, n),
        }
    )


@pytest.fixture
def deployed(api: Api) -> dict[str, Any]:
    """churn-api serving churn v1, trained by a run that read train@v1."""
    ctx = api.ctx
    caller = ctx.auth.authenticate(api.admin_token)
    rng = np.random.default_rng(0)
    sink = io.BytesIO()
    pq.write_table(_table(rng, 3000), sink)
    info = ctx.blobs.put_bytes(sink.getvalue())
    ctx.store.data.commit_version(
        "default",
        "train",
        [ArtifactEntry("train.parquet", info.digest, info.size)],
        manifest_digest="a" * 64,
        user="admin",
    )
    run = ctx.tracking.create_run(caller, 0, name="train")
    ctx.data.record_input(caller, "default", "train@v1", run.id)
    signature = Signature(ColumnSchema(tuple(ColumnSpec(f, "float64") for f in FEATURES)))
    ctx.store.registry.create_version(
        "default",
        "churn",
        source_run_id=run.id,
        source_uri="upload",
        flavor="sklearn",
        signature_json=json.dumps(signature.to_json()),
        package_digest="b" * 64,
        files=[ArtifactEntry("modelyard.yaml", "b" * 64, 10)],
        user="admin",
    )
    ctx.store.registry.set_alias("default", "churn", "production", 1, "admin")
    r = api.client.post(
        BASE,
        json={"name": "churn-api", "model": "models:/churn@production"},
        headers=api.as_admin(),
    )
    assert r.status_code == 201, r.text
    dep = ctx.store.deployments.get("churn-api", "default")
    return {"id": dep.id, "rng": rng}


def _log(
    api: Api, fake_clock: FakeClock, dep_id: int, rows: pa.Table, *, prefix: str = "q"
) -> None:
    """What a replica of revision 1 writes: one request per row."""
    directory = revision_spool(api.ctx.settings.home, dep_id, 1)
    log = PredictionLog(
        PredictionLogOptions(
            str(directory),
            deployment="churn-api",
            revision=1,
            replica="r-1",
            max_bytes_per_s=1 << 30,
        ),
        FEATURES,
        clock=fake_clock.now,
    )
    matrix = np.column_stack([rows.column(f).to_numpy() for f in FEATURES])
    for i in range(len(matrix)):
        log.record(f"{prefix}{i}", 200, 0.002, matrix[i : i + 1], np.array([i % 2]))
    log.flush()


def test_drift_against_the_training_data_from_lineage(
    api: Api, fake_clock: FakeClock, deployed: dict[str, Any]
) -> None:
    shifted = _table(deployed["rng"], 1500, shift=2.0)
    _log(api, fake_clock, deployed["id"], shifted)
    r = api.client.get(f"{BASE}/churn-api/drift", params={"window_s": 3600}, headers=api.as_admin())
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["reference"] == "train@v1"
    assert result["rows"] == 1500
    verdicts = {f["column"]: f["drifted"] for f in result["report"]["features"]}
    assert verdicts == {"age": True, "income": False, "score": False, "tenure": False}
    assert result["drift_share"] == pytest.approx(0.25)
    assert result["dataset_drift"] is False
    # The segment is in the artifact store, and the spool is empty again.
    segments = api.ctx.store.monitoring.segments(deployed["id"])
    assert sum(s.rows for s in segments) == 1500
    assert not list(revision_spool(api.ctx.settings.home, deployed["id"], 1).glob("*.parquet"))
    # One feature only, another test.
    r = api.client.get(
        f"{BASE}/churn-api/drift",
        params={"feature": "age", "stattest": "psi"},
        headers=api.as_admin(),
    )
    assert r.status_code == 200, r.text
    assert [f["test"] for f in r.json()["report"]["features"]] == ["psi"]


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"feature": "nope"}, 400, "unknown feature"),
        ({"stattest": "magic"}, 400, "magic"),
        ({"window_s": 0}, 400, "window_s"),
    ],
)
def test_bad_drift_requests(
    api: Api,
    fake_clock: FakeClock,
    deployed: dict[str, Any],
    params: dict[str, Any],
    status: int,
    fragment: str,
) -> None:
    _log(api, fake_clock, deployed["id"], _table(deployed["rng"], 200))
    r = api.client.get(f"{BASE}/churn-api/drift", params=params, headers=api.as_admin())
    assert r.status_code == status, r.text
    assert fragment in r.text


def test_too_few_rows_is_a_clear_error(api: Api, deployed: dict[str, Any]) -> None:
    r = api.client.get(f"{BASE}/churn-api/drift", headers=api.as_admin())
    assert r.status_code == 400
    assert "logged 0 rows" in r.json()["message"]


def test_feedback_joins_labels_by_request_id(
    api: Api, fake_clock: FakeClock, deployed: dict[str, Any]
) -> None:
    _log(api, fake_clock, deployed["id"], _table(deployed["rng"], 100))
    # Predictions were i % 2; labels agree on 3 of every 4 requests, one id is unknown.
    labels = [{"request_id": f"q{i}", "label": (i % 2) if i % 4 else 1 - i % 2} for i in range(100)]
    labels.append({"request_id": "never-seen", "label": 1})
    r = api.client.post(
        f"{BASE}/churn-api/feedback",
        content=json.dumps({"labels": labels}),
        headers={**api.as_admin(), "content-type": "application/json"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["rows"], body["matched"]) == (101, 100)
    assert body["quality"]["accuracy"] == pytest.approx(0.75)
    q = api.client.get(f"{BASE}/churn-api/quality", headers=api.as_admin()).json()
    assert q[-1]["rows"] == 100
    assert q[-1]["accuracy"] == pytest.approx(0.75)
    # A CSV with a missing label names the line.
    bad = b"request_id,label\nq1,1\nq2,\n"
    r = api.client.post(
        f"{BASE}/churn-api/feedback",
        content=bad,
        headers={**api.as_admin(), "content-type": "text/csv"},
    )
    assert r.status_code == 400
    assert "line 2" in r.json()["message"]
    r = api.client.post(
        f"{BASE}/churn-api/feedback",
        content=b"\x00garbage",
        headers={**api.as_admin(), "content-type": "application/vnd.apache.parquet"},
    )
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"rules": ["p99_ms >> 50"]}, 400, "'>>'"),
        ({"rules": ["p98_ms > 50"]}, 400, "unknown metric"),
        ({"rules": ["drift:nope > 0.1"]}, 400, "nope"),
        ({"rules": ["p99_ms > 50 for 2x"]}, 400, "2x"),
        ({"rules": ["p99_ms > 50"], "webhook": "ftp://x"}, 400, "http"),
        ({"rules": ["p99_ms > 50"], "action": "missing"}, 404, "missing"),
        ({"rules": []}, 400, "rules"),
        ({"rules": ["p99_ms > 50"], "hysteresis": 2}, 400, "hysteresis"),
    ],
)
def test_bad_rules_are_refused_and_write_nothing(
    api: Api, deployed: dict[str, Any], body: dict[str, Any], status: int, fragment: str
) -> None:
    r = api.client.post(f"{BASE}/churn-api/alerts", json=body, headers=api.as_admin())
    assert r.status_code == status, r.text
    assert fragment in r.text
    assert api.client.get(f"{BASE}/churn-api/alerts", headers=api.as_admin()).json() == []


class _Receiver:
    """A webhook receiver on 127.0.0.1 that records bodies and answers ``statuses``."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver([500])  # the first delivery fails and is retried
    yield r
    r.close()


def _snapshot(now_s: float, completions: int, slow: int) -> GatewaySnapshot:
    from modelyard.gateway.stats import LATENCY_BUCKETS_S, bucket_index

    buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)
    buckets[bucket_index(0.004)] += completions - slow
    buckets[bucket_index(0.2)] += slow
    return GatewaySnapshot.parse(
        {
            "now_s": now_s,
            "deployments": {
                "churn-api": {
                    "revisions": {
                        "1": {
                            "completions": completions,
                            "arrivals": completions,
                            "service_count": completions,
                            "latency_buckets": buckets,
                        }
                    }
                }
            },
        }
    )


def test_a_rule_fires_notifies_a_signed_webhook_and_resolves(
    api: Api, fake_clock: FakeClock, deployed: dict[str, Any], receiver: _Receiver
) -> None:
    r = api.client.post(
        f"{BASE}/churn-api/alerts",
        json={"rules": ["p99_ms > 50 for 20s"], "webhook": receiver.url},
        headers=api.as_admin(),
    )
    assert r.status_code == 201, r.text
    secret = r.json()["webhook_secret"]
    assert secret
    # Counters: each pass adds 100 requests; passes 2-5 have 5 % slow (200 ms) requests.
    state = {"n": 0, "slow": 0, "t": 0.0}
    slow_passes = {2, 3, 4, 5}

    def stats() -> GatewaySnapshot:
        return _snapshot(state["t"], state["n"], state["slow"])

    delays: list[float] = []
    loop = MonitorLoop(
        api.ctx.store,
        api.ctx.monitoring,
        api.ctx.settings.home,
        stats,
        clock=fake_clock,
        interval_s=10,
    )
    dispatcher = Dispatcher(loop._delivered, sleep=delays.append, base_delay_s=1.0)
    loop._dispatcher = dispatcher
    try:
        for i in range(12):
            state["n"] += 100
            state["slow"] += 5 if i in slow_passes else 0
            state["t"] += 10.0
            fake_clock.advance(10)
            loop.tick()
        deadline = time.monotonic() + 20
        while dispatcher.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        dispatcher.close(timeout=10)
    finally:
        dispatcher.close(timeout=1)
    history = api.client.get(f"{BASE}/churn-api/alerts/history", headers=api.as_admin()).json()
    kinds = [e["kind"] for e in history]
    assert kinds.index("pending") < kinds.index("firing") < kinds.index("resolved")
    assert "notify_failed" in kinds  # the 500
    assert kinds.count("notify") == 2  # firing (on the retry) and resolved
    assert delays  # the retry waited (without sleeping for real)
    # Deliveries: firing twice (500, then 200), resolved once; each signed.
    states = [json.loads(body)["state"] for _, body in receiver.received]
    assert states == ["firing", "firing", "resolved"]
    for headers, body in receiver.received:
        ts = headers["x-modelyard-timestamp"]
        expected = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        assert headers["x-modelyard-signature"] == f"sha256={expected}"
    audit = api.client.get("/api/v1/audit", headers=api.as_admin()).json()
    notified = [a for a in audit if a["action"] == "alert.notify"]
    assert [a["outcome"] for a in reversed(notified)] == ["error", "ok", "ok"]  # newest first
    rules = api.client.get(f"{BASE}/churn-api/alerts", headers=api.as_admin()).json()
    assert rules[0]["state"]["status"] == "inactive"
    shown = api.client.get(f"{BASE}/churn-api/monitoring", headers=api.as_admin()).json()
    assert shown["live"]["rps"] == pytest.approx(10.0)
    assert len(shown["series"]) == 11


def test_a_silence_mutes_notifications_but_keeps_history(
    api: Api, fake_clock: FakeClock, deployed: dict[str, Any], receiver: _Receiver
) -> None:
    api.client.post(
        f"{BASE}/churn-api/alerts",
        json={"rules": ["rps > 5"], "webhook": receiver.url},
        headers=api.as_admin(),
    )
    r = api.client.post(
        f"{BASE}/churn-api/silences",
        json={"duration": "1h", "comment": "maintenance"},
        headers=api.as_admin(),
    )
    assert r.status_code == 201, r.text
    state = {"n": 0, "t": 0.0}
    loop = MonitorLoop(
        api.ctx.store,
        api.ctx.monitoring,
        api.ctx.settings.home,
        lambda: _snapshot(state["t"], state["n"], 0),
        clock=fake_clock,
    )
    try:
        for _ in range(3):
            state["n"] += 100
            state["t"] += 10.0
            fake_clock.advance(10)
            loop.tick()
    finally:
        loop.stop()
    kinds = [
        e["kind"]
        for e in api.client.get(f"{BASE}/churn-api/alerts/history", headers=api.as_admin()).json()
    ]
    assert "firing" in kinds
    assert "silenced" in kinds
    assert receiver.received == []


def test_viewer_reads_but_cannot_change(api: Api, deployed: dict[str, Any]) -> None:
    viewer = api.auth(api.token_for("vera", Role.VIEWER))
    assert api.client.get(f"{BASE}/churn-api/monitoring", headers=viewer).status_code == 200
    assert api.client.get(f"{BASE}/churn-api/alerts", headers=viewer).status_code == 200
    r = api.client.post(f"{BASE}/churn-api/alerts", json={"rules": ["rps > 1"]}, headers=viewer)
    assert r.status_code == 403


def test_command_actions_need_a_platform_admin(api: Api, deployed: dict[str, Any]) -> None:
    admin_of_project = api.auth(api.token_for("pam", Role.ADMIN))
    body = {"name": "retrain", "command": ["python", "retrain.py"]}
    r = api.client.post(
        "/api/v1/projects/default/alert-actions", json=body, headers=admin_of_project
    )
    assert r.status_code == 403
    r = api.client.post("/api/v1/projects/default/alert-actions", json=body, headers=api.as_admin())
    assert r.status_code == 201, r.text
    hook = {"name": "page", "webhook": "http://127.0.0.1:9/x"}
    r = api.client.post(
        "/api/v1/projects/default/alert-actions", json=hook, headers=admin_of_project
    )
    assert r.status_code == 201, r.text
    assert r.json()["webhook_secret"].startswith("whsec_")
    listed = api.client.get("/api/v1/projects/default/alert-actions", headers=api.as_admin()).json()
    assert {a["name"] for a in listed} == {"retrain", "page"}
    assert all("secret" not in json.dumps(a) for a in listed)


def test_export_gives_prometheus_rules_and_a_dashboard(api: Api, deployed: dict[str, Any]) -> None:
    api.client.post(
        f"{BASE}/churn-api/alerts",
        json={"rules": ["p99_ms > 50 for 2m", "drift_share > 0.3"]},
        headers=api.as_admin(),
    )
    r = api.client.get("/api/v1/projects/default/monitoring/export", headers=api.as_admin())
    assert r.status_code == 200, r.text
    body = r.json()
    assert "histogram_quantile(0.99" in body["prometheus_rules"]
    assert "modelyard_drift_share" in body["prometheus_rules"]
    assert body["grafana_dashboard"]["panels"]
