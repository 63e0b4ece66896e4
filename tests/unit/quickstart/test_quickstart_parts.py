"""The quickstart's pure parts: the traffic plan, request bodies, counters, results,
event lines, and what cleanup stops (with a fake client: no network, no processes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from modelyard.config import Settings
from modelyard.quickstart import (
    CostSummary,
    LineageNode,
    MonitorSummary,
    QuickstartFailed,
    QuickstartOptions,
    QuickstartResult,
    RunSummary,
    TrafficSummary,
)
from modelyard.quickstart._server import ServerHandle
from modelyard.quickstart._steps import _Walk
from modelyard.quickstart._traffic import LoadStats, request_bodies, traffic_plan
from modelyard.quickstart.view import event_line


def test_the_plan_ramps_bursts_pauses_and_scales_its_durations() -> None:
    full, short = traffic_plan(1.0), traffic_plan(0.3)
    ramp = [p.concurrency for p in full if p.name == "ramp"]
    assert ramp == sorted(ramp)
    assert (ramp[0], ramp[-1]) == (1, 8)
    assert [p.concurrency for p in full if p.name == "burst"] == [32]
    assert full[-1].name == "pause"
    assert full[-1].concurrency == 0
    for long, quick in zip(full, short, strict=True):
        assert quick.duration_s == pytest.approx(0.3 * long.duration_s)
    assert sum(p.duration_s for p in full) <= 60  # the whole walk fits in three minutes


def test_request_bodies_are_mlflow_dataframe_split_of_every_row() -> None:
    rows = [[float(i), float(-i)] for i in range(5)]
    bodies = [json.loads(b) for b in request_bodies(["a", "b"], rows, 2)]
    assert [b["dataframe_split"]["columns"] for b in bodies] == [["a", "b"]] * 3
    assert [r for b in bodies for r in b["dataframe_split"]["data"]] == rows


def test_stats_count_failures_and_take_nearest_rank_percentiles() -> None:
    stats = LoadStats()
    for ms in range(1, 101):
        stats.record(ms / 1000, ok=True)
    stats.record(5.0, ok=False, error="HTTP 503")
    assert (stats.sent, stats.failed) == (101, 1)
    assert stats.percentiles_ms() == (pytest.approx(50.0), pytest.approx(99.0))
    snap = stats.snapshot()
    assert snap.last_error == "HTTP 503"
    assert snap.p99_ms == pytest.approx(99.0)


def result() -> QuickstartResult:
    run = RunSummary("r" * 32, "random-forest", "RandomForestClassifier",
                     {"accuracy": 0.95, "f1": 0.96, "roc_auc": 0.99}, 0.2)  # fmt: skip
    traffic = TrafficSummary(1000, 2, 3.5, 20.0, 50.0, 4, True)
    return QuickstartResult(
        "http://127.0.0.1:5005", True, "quickstart-data@v1", (run,), run.run_id,
        "quickstart-model", 1, "quickstart-api", "http://127.0.0.1:5006/quickstart-api/",
        False, traffic, MonitorSummary("drift_share > 0.3 for 10s", True, 12.0, 0.4, ("a",), 900),
        CostSummary("USD", 0.0012, 0.03, 1900, 0.0006, 0.4),
        (LineageNode("dataset_version", "quickstart-data@v1"),), 80.0,
    )  # fmt: skip


def test_the_result_is_plain_json() -> None:
    data = json.loads(json.dumps(result().to_json()))
    assert data["requests_sent"] == 1000
    assert data["requests_failed"] == 2
    assert data["runs"][0]["metrics"]["roc_auc"] == 0.99
    assert data["traffic"]["scaled_to_zero"] is True
    assert data["cost"]["currency"] == "USD"
    assert data["lineage"] == [{"kind": "dataset_version", "label": "quickstart-data@v1"}]


def test_a_failure_names_its_step() -> None:
    assert str(QuickstartFailed(3, "boom")) == "step 3/11 (train candidates) failed: boom"


def test_event_lines_show_the_direction_of_a_scaling_decision() -> None:
    def scale(desired: int, actual: int) -> dict[str, Any]:
        return {"kind": "scale", "message": f"{actual} -> {desired}",
                "data": {"desired": desired, "actual": actual}}  # fmt: skip

    assert "⬆" in (event_line(scale(3, 1)) or "")
    assert "⬇" in (event_line(scale(0, 2)) or "")
    assert "=" in (event_line(scale(1, 1)) or "")
    assert event_line({"kind": "traffic", "message": "x", "data": {}}) is None


class FakeClient:
    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.closed = False

    def delete_deployment(self, project: str, name: str) -> dict[str, Any]:
        self.deleted.append(f"{project}/{name}")
        return {}

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("keep_running", "created", "deleted"),
    [(False, True, ["default/quickstart-api"]), (False, False, []), (True, True, [])],
)
def test_cleanup_deletes_only_a_deployment_it_created_unless_kept(
    tmp_path: Path, keep_running: bool, created: bool, deleted: list[str]
) -> None:
    options = QuickstartOptions(Settings(home=tmp_path), keep_running=keep_running)
    walk = _Walk(options, Console(quiet=True))
    client = FakeClient()
    walk.server, walk.client = ServerHandle("http://127.0.0.1:5005"), client  # type: ignore[assignment]
    walk.created_deployment = created
    walk._cleanup()
    assert client.deleted == deleted
    assert client.closed
