"""The gateway's request log: every answered request, errors included, per deployment."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gateway_harness import GatewayProcess, Upstream, deployment, revision

pytestmark = pytest.mark.slow


def _read(folder: Path, rows: int, timeout_s: float = 15.0) -> pa.Table:
    deadline = time.monotonic() + timeout_s
    while True:
        files = sorted(folder.glob("*.parquet"))
        table = pa.concat_tables([pq.read_table(f) for f in files]) if files else None
        if table is not None and table.num_rows >= rows:
            return table
        assert time.monotonic() < deadline, f"{0 if table is None else table.num_rows} rows"
        time.sleep(0.2)


def test_answers_and_gateway_errors_are_logged_per_deployment(
    tmp_path: Path, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, _, _ = upstreams
    gateway = GatewayProcess("--request-log", str(tmp_path / "log"))
    try:
        gateway.push(
            deployment("logged", revision(1, 100, a)),
            deployment("nobody", revision(2, 100), queue_timeout_s=0.1),
        )
        with httpx.Client(base_url=gateway.url, timeout=10) as client:
            ids = []
            for i in range(20):
                r = client.post("/logged/predict", content=b"{}", headers={"x-request-id": f"q{i}"})
                assert r.status_code == 200
                ids.append(r.headers["x-request-id"])
            held = client.post("/nobody/predict", content=b"{}")
            assert held.status_code == 503  # no replica came up in time
    finally:
        gateway.close()  # SIGTERM: what is still buffered is written
    logged = _read(tmp_path / "log" / "logged", 20)
    assert logged.column("_request_id").to_pylist() == ids
    assert set(logged.column("_status").to_pylist()) == {200}
    assert set(logged.column("_replica").to_pylist()) == {a.id}
    assert min(logged.column("_latency_ms").to_pylist()) > 0
    failed = _read(tmp_path / "log" / "nobody", 1)
    assert failed.column("_status").to_pylist() == [503]
    assert failed.column("_request_id").to_pylist() == [held.headers["x-request-id"]]
    assert failed.column("_revision").to_pylist() == [2]
    assert not list((tmp_path / "log").rglob("*.tmp"))
