"""The tracking SDK against a real server: the whole API, faults and concurrency."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import modelyard as my
from modelyard.client import ModelyardClient
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.core.tracking import LogBatch, Metric, RunStatus
from modelyard.testing.server_process import ServerProcess, running_server

pytestmark = pytest.mark.slow


def test_the_sdk_walkthrough(sdk: ServerProcess, tmp_path: Path) -> None:
    my.set_experiment("churn")
    with my.start_run(name="rf-200", tags={"team": "growth"}) as run:
        my.log_params({"n_estimators": 200, "max_depth": 8})
        for step in range(1000):
            my.log_metric("loss", 1 / (step + 1), step=step)
        my.log_metric("auc", 0.93)
        plot = tmp_path / "confusion.png"
        plot.write_bytes(b"\x89PNG fake but bytes")
        my.log_artifact(plot, "plots")
        with my.start_run(name="fold-1", nested=True) as child:
            my.log_metric("auc", 0.91)
        with pytest.raises(InvalidInput, match="immutable"):
            my.log_param("max_depth", 9)
    with pytest.raises(RuntimeError), my.start_run(name="broken"):
        raise RuntimeError("training blew up")

    with ModelyardClient(sdk.uri, sdk.admin_token) as client:
        stored = client.get_run(run.id)
        assert stored.status is RunStatus.FINISHED
        assert stored.params == {"n_estimators": "200", "max_depth": "8"}
        assert stored.tags["team"] == "growth"
        assert len(client.metric_history(run.id, "loss")) == 1000
        assert [a.path for a in client.list_run_artifacts(run.id)] == ["plots/confusion.png"]
        assert client.get_run(child.id).parent_run_id == run.id

    df = my.search_runs(
        "churn",
        filter="metrics.auc > 0.9 and params.max_depth = '8'",
        order_by=["metrics.auc DESC"],
    )
    assert list(df["run_name"]) == ["rf-200"]
    everything = my.search_runs("churn", order_by=["attributes.start_time ASC"])
    assert list(everything["status"]) == ["FINISHED", "FINISHED", "FAILED"]


STREAMER = textwrap.dedent(
    """
    import sys, time
    import modelyard as my
    my.set_experiment("faults")
    with my.start_run(name="stream") as run:
        print(run.id, flush=True)
        for i in range(50_000):
            my.log_metric("m", float(i), step=i)
            if i % 500 == 0:
                time.sleep(0.03)
    print("done", flush=True)
    """
)


def test_sigkill_while_streaming_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with running_server(home) as first:
        port, token = first.port, first.admin_token
        env = {**first.env(), "PYTHONUNBUFFERED": "1"}
        env.pop("MODELYARD_TOKEN", None)
        streamer = subprocess.Popen(
            [sys.executable, "-c", STREAMER], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert streamer.stdout is not None
            run_id = streamer.stdout.readline().strip()
            with ModelyardClient(first.uri, token) as client:
                deadline = time.monotonic() + 60
                while len(client.metric_history(run_id, "m")) < 5000:
                    assert time.monotonic() < deadline, "streaming never got going"
                    time.sleep(0.1)
            os.killpg(first.process.pid, signal.SIGKILL)
            first.process.wait()
            time.sleep(5)
            with running_server(home, port=port) as second:
                streamer.wait(timeout=180)
                assert streamer.stdout.read().strip() == "done"
                with ModelyardClient(second.uri, token) as client:
                    history = client.metric_history(run_id, "m")
                    assert client.get_run(run_id).status is RunStatus.FINISHED
        finally:
            streamer.kill()
            streamer.wait()
            if streamer.stdout is not None:
                streamer.stdout.close()
    assert len(history) == 50_000
    assert sorted(m.step for m in history) == list(range(50_000))


def test_32_concurrent_clients_on_sqlite(server: ServerProcess) -> None:
    with ModelyardClient(server.uri, server.admin_token) as admin:
        experiment = admin.create_experiment("default", "load")
        shared = admin.create_run(experiment.id, name="shared").id
        own = [admin.create_run(experiment.id, name=f"own-{i}").id for i in range(16)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(32)

    def client_loop(i: int) -> None:
        target = shared if i % 2 else own[i // 2]
        try:
            with ModelyardClient(server.uri, server.admin_token) as client:
                barrier.wait()
                for b in range(20):
                    metrics = tuple(Metric(f"m{i}", float(s), b * 50 + s, 0) for s in range(50))
                    client.log_batch(target, LogBatch(metrics=metrics, batch_id=f"{i}-{b}"))
        except BaseException as exc:
            errors.append(exc)

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(client_loop, range(32)))
    assert errors == []
    with ModelyardClient(server.uri, server.admin_token) as client:
        for i in range(32):
            target = shared if i % 2 else own[i // 2]
            assert len(client.metric_history(target, f"m{i}")) == 1000


def test_start_run_with_run_id_reopens_an_existing_run(sdk: ServerProcess) -> None:
    my.set_experiment("reopen")
    with my.start_run(name="driver-made") as made:
        pass
    with my.start_run(run_id=made.id, tags={"worker": "w1"}) as again:
        assert again.id == made.id
        assert my.get_run(made.id).status is RunStatus.RUNNING
        my.log_metric("loss", 0.5)
    with ModelyardClient(sdk.uri, sdk.admin_token) as client:
        stored = client.get_run(made.id)
    assert stored.status is RunStatus.FINISHED
    assert stored.tags["worker"] == "w1"
    assert stored.metrics["loss"].value == 0.5
    with pytest.raises(NotFound):
        my.start_run(run_id="no-such-run")
    assert my.active_run() is None
