"""The gateway's request log without a gateway: tables per deployment, the entry budget."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from modelyard.gateway._reqlog import RequestLog, build_tables


def test_tables_are_split_by_deployment() -> None:
    entries = [
        (1_700_000_000.0, "a1", "churn", 1, "r-1", 200, 0.004, 1),
        (1_700_000_000.5, "b1", "fraud", 2, "", 503, 30.0, 0),
        (1_700_000_001.0, "a2", "churn", 1, "r-2", 502, 0.2, 2),
    ]
    tables = build_tables(entries)
    assert set(tables) == {"churn", "fraud"}
    churn = tables["churn"].to_pydict()
    assert churn["_request_id"] == ["a1", "a2"]
    assert churn["_status"] == [200, 502]
    assert churn["_attempts"] == [1, 2]
    assert churn["_latency_ms"][0] == pytest.approx(4.0)
    assert [t.timestamp() for t in churn["_ts"]] == [1_700_000_000.0, 1_700_000_001.0]
    assert tables["fraud"].to_pydict()["_replica"] == [""]


def test_the_budget_drops_beyond_the_entries_per_second(tmp_path: Path) -> None:
    log = RequestLog(tmp_path, max_entries_per_s=10)
    for i in range(25):
        log.record(f"q{i}", "churn", 1, "r", 200, 0.001, 1)
    assert log.logged + log.dropped == 25
    assert log.logged <= 20  # at most 10 in each second the loop crossed


def test_close_writes_what_is_buffered(tmp_path: Path) -> None:
    async def run() -> None:
        log = RequestLog(tmp_path, flush_interval_s=60)
        log.start(asyncio.get_running_loop())
        log.record("q1", "churn", 1, "r", 200, 0.001, 1)
        await log.close()

    asyncio.run(run())
    (written,) = (tmp_path / "churn").glob("*.parquet")
    assert pq.read_table(written).column("_request_id").to_pylist() == ["q1"]


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_entries_per_s"):
        RequestLog(tmp_path, max_entries_per_s=0)
