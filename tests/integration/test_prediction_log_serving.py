"""``modelyard serve --log-predictions``: a real server logs what it answered, under the
request's id, and writes what it holds when stopped."""

from __future__ import annotations

from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelyard.serving._demo import ServerProcess, write_demo_package

pytestmark = pytest.mark.slow

COLUMNS = [f"f{i}" for i in range(20)]


def test_served_predictions_are_logged_with_their_request_ids(tmp_path: Path) -> None:
    package = write_demo_package(tmp_path / "churn", "logreg")
    spool = tmp_path / "spool"
    row = [0.1 * j for j in range(20)]
    with (
        ServerProcess(str(package), "--log-predictions", str(spool)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        split = {"dataframe_split": {"columns": COLUMNS, "data": [row, row]}}
        r = client.post("/invocations", json=split, headers={"x-request-id": "from-gateway"})
        assert r.status_code == 200
        assert "x-request-id" not in r.headers  # the caller's id is not echoed back
        r = client.post("/invocations", json=split)
        assert r.status_code == 200
        assert "x-request-id" not in r.headers  # made up for the log, not sent back
        infer = {
            "id": "oip-42",
            "inputs": [{"name": "input-0", "shape": [1, 20], "datatype": "FP64", "data": row}],
        }
        r = client.post(f"/v2/models/{package.name}/infer", json=infer)
        assert r.status_code == 200, r.text
        bad = client.post("/invocations", json={"dataframe_split": {"columns": ["x"]}})
        assert bad.status_code == 400
        metrics = client.get("/metrics").text
        assert 'modelyard_prediction_log_requests_total{deployment="",outcome="logged"' in metrics
    # Stopped with SIGTERM: whatever was buffered is on disk now.
    table = pa.concat_tables([pq.read_table(p) for p in sorted(spool.glob("*.parquet"))])
    ids = table.column("_request_id").to_pylist()
    assert ids.count("from-gateway") == 2
    assert ids.count("oip-42") == 1
    (made_up,) = set(ids) - {"from-gateway", "oip-42"}
    assert ids.count(made_up) == 2  # both rows of the request without an id
    assert table.column("f3").to_pylist()[0] == pytest.approx(0.3)
    assert set(table.column("_status").to_pylist()) == {200}
    assert not list(spool.glob("*.tmp"))
