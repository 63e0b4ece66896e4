"""``my.tune`` on a real 2-node Ray cluster (1 CPU per node) and a real server.

One cluster and one server for the module (starting Ray costs ~7 s here); each test
tunes in its own experiment. Every ``my.tune`` here opens its own Ray connection and
closes it again, except where a test connects first (then the study must reuse it).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import ray
from ray_support import (
    RAY_MARKS,
    dead_address,
    disconnect,
    mark,
    marks,
    point_sdk,
    restore_nodes,
    two_node_cluster,
    wait_for,
)
from tune_support import children, experiment_runs, identity, tuning_client

import modelyard as my
from modelyard.client import ModelyardClient
from modelyard.core.tracking import Run, RunStatus
from modelyard.executors import ExecutorUnavailable, current_node
from modelyard.testing.ray_cluster import RayCluster
from modelyard.testing.server_process import ServerProcess, running_server
from modelyard.tracking import fluent
from modelyard.tuning import Study, StudyState, TrialState

pytestmark = RAY_MARKS

SPACE = {"x": my.uniform(0.0, 1.0)}


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    with two_node_cluster() as running:
        yield running


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("tune-ray") / "home") as server:
        yield server


@pytest.fixture
def sdk(
    served: ServerProcess, cluster: RayCluster, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelyardClient]:
    """The SDK on the module's server in a fresh experiment, ``RAY_ADDRESS`` on the
    cluster; no Ray connection before or after the test."""
    assert not ray.is_initialized()
    point_sdk(served, cluster, monkeypatch)
    try:
        yield from tuning_client(served, monkeypatch)
    finally:
        disconnect()


def slow_parabola(params: dict[str, Any]) -> float:
    """Best at x = 0.5; slow enough that the two nodes run trials at the same time."""
    time.sleep(0.3)
    return float((params["x"] - 0.5) ** 2)


def assert_trials_stored(client: ModelyardClient, study: Study, nodes: set[str]) -> list[Run]:
    """Every trial is a finished child run, tagged with a node of the cluster."""
    runs = children(client, study.run_id)
    assert [r.name for r in runs] == [f"trial-{t.number}" for t in study.trials]
    for run, trial in zip(runs, study.trials, strict=True):
        assert run.id == trial.run_id
        assert run.status is RunStatus.FINISHED
        assert run.tags["modelyard.trial.state"] == "COMPLETE"
        assert float(run.tags["modelyard.trial.value"]) == trial.value
        assert run.tags["modelyard.trial.node"] == trial.node
        assert trial.node in nodes  # a Ray node id: the trial ran as a Ray task
    return runs


def test_trials_spread_over_the_nodes(sdk: ModelyardClient, cluster: RayCluster) -> None:
    study = my.tune(slow_parabola, SPACE, n_trials=8, executor="ray", seed=3, study="spread")
    assert not ray.is_initialized()  # the study's own connection is closed again
    assert study.state is StudyState.COMPLETED
    assert len(study.trials) == 8
    assert_trials_stored(sdk, study, set(cluster.node_ids))
    assert len({t.node for t in study.trials}) >= 2
    parent = sdk.get_run(study.run_id)
    assert parent.status is RunStatus.FINISHED
    assert parent.tags["modelyard.study.executor"] == "ray"
    assert parent.tags["modelyard.study.state"] == "COMPLETED"
    assert parent.metrics["objective"].value == study.best_value


def test_the_ray_client_address_runs_a_study(sdk: ModelyardClient, cluster: RayCluster) -> None:
    address = cluster.client_address
    assert address is not None
    study = my.tune(identity, SPACE, n_trials=4, executor=address, seed=4)
    assert not ray.is_initialized()
    assert study.state is StudyState.COMPLETED
    assert_trials_stored(sdk, study, set(cluster.live_node_ids))
    assert sdk.get_run(study.run_id).tags["modelyard.study.executor"] == address


def test_an_address_nobody_listens_on_writes_no_run(sdk: ModelyardClient) -> None:
    with my.start_run(name="before"):
        pass
    before = {r.id for r in experiment_runs(sdk)}
    address = dead_address()
    with pytest.raises(ExecutorUnavailable, match=f"Ray at {address} does not answer"):
        my.tune(identity, SPACE, n_trials=4, executor=address, study="unreachable")
    assert {r.id for r in experiment_runs(sdk)} == before
    assert not ray.is_initialized()


def test_an_existing_connection_is_reused_and_left_open(
    sdk: ModelyardClient, cluster: RayCluster
) -> None:
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        study = my.tune(identity, SPACE, n_trials=4, executor="ray", seed=5)
        assert ray.is_initialized()  # the user's connection, not the study's to close
        assert study.state is StudyState.COMPLETED
        assert_trials_stored(sdk, study, set(cluster.live_node_ids))

        def where() -> str:
            return current_node()

        task = ray.remote(where).remote()
        assert ray.get(task, timeout=60) in cluster.live_node_ids  # still usable
    finally:
        ray.shutdown()


# --- a node killed mid-study -------------------------------------------------------------


def held_on(victim: str, folder: Path, delay_s: float) -> Callable[[dict[str, Any]], float]:
    """An objective that records each call. On ``victim``, while ``hold`` exists, it
    holds until its node is killed (so a trial surely runs there then) and never
    returns: a worker of a killed node can outlive its raylet for a moment, and must
    not finish the trial meanwhile."""

    def objective(params: dict[str, Any]) -> float:
        node = current_node()
        held = node == victim and (folder / "hold").exists()
        mark(folder, x=params["x"], node=node, held=held)
        if held:
            deadline = time.monotonic() + 180
            while (folder / "hold").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            os._exit(1)  # released: a dead node's worker, or the test gave up
        time.sleep(delay_s)
        return float((params["x"] - 0.5) ** 2)

    return objective


def finished_trials(client: ModelyardClient, experiment_id: int) -> list[Run]:
    page = client.search_runs([experiment_id], max_results=1000)
    return [
        r
        for r in page.items
        if "modelyard.trial.state" in r.tags and r.status is RunStatus.FINISHED
    ]


def kill_mid_study(
    served: ServerProcess,
    cluster: RayCluster,
    experiment_id: int,
    folder: Path,
    victim: int,
    over: threading.Event,
) -> tuple[list[Run], str]:
    """Once >= 2 trials finished (one on the victim), hold a trial on the victim, kill
    it there; the trials finished before the kill (as stored then) and the node id."""
    victim_id = cluster.node_ids[victim]
    hold = folder / "hold"

    def check() -> None:
        if over.is_set():
            raise RuntimeError("the study ended before the node was killed")

    with ModelyardClient(served.uri, served.admin_token) as client:
        try:

            def two_done_one_on_victim() -> list[Run] | None:
                done = finished_trials(client, experiment_id)
                on_victim = [r for r in done if r.tags["modelyard.trial.node"] == victim_id]
                check()
                return done if len(done) >= 2 and on_victim else None

            def held() -> bool | None:
                check()
                return any(m["held"] for m in marks(folder)) or None

            wait_for("two finished trials, one on the victim", two_done_one_on_victim)
            hold.touch()
            wait_for("a trial held on the victim", held)
            before = finished_trials(client, experiment_id)
            return before, cluster.kill_node(victim)
        except BaseException:
            hold.unlink()  # let the held trial go (it runs again): the study can end
            raise


def test_a_node_killed_mid_study_loses_no_finished_trial(
    sdk: ModelyardClient, served: ServerProcess, cluster: RayCluster, tmp_path: Path
) -> None:
    victim = 1
    objective = held_on(cluster.node_ids[victim], tmp_path, 0.5)
    experiment_id = fluent._get().current_experiment().id
    over = threading.Event()
    try:
        with ThreadPoolExecutor(1) as pool:
            killer = pool.submit(
                kill_mid_study, served, cluster, experiment_id, tmp_path, victim, over
            )
            try:
                study = my.tune(objective, SPACE, n_trials=10, executor="ray", seed=6)
            finally:
                over.set()
            before, killed = killer.result(timeout=60)
    finally:
        (tmp_path / "hold").unlink(missing_ok=True)
        restore_nodes(cluster)

    assert study.state is StudyState.COMPLETED
    assert [t.number for t in study.trials] == list(range(10))
    assert all(t.state is TrialState.COMPLETE for t in study.trials)  # the lost one re-ran
    assert_trials_stored(sdk, study, set(cluster.node_ids))
    calls: dict[float, list[dict[str, Any]]] = {}
    for call in marks(tmp_path):
        calls.setdefault(call["x"], []).append(call)
    by_run = {t.run_id: t for t in study.trials}

    # Finished before the kill: the same runs, unchanged, each objective called once.
    assert 2 <= len(before) < 10
    for old in before:
        now = sdk.get_run(old.id)
        assert (now.status, now.end_time_ms, now.tags) == (old.status, old.end_time_ms, old.tags)
        trial = by_run[old.id]
        assert trial.value == float(old.tags["modelyard.trial.value"])
        assert len(sdk.metric_history(old.id, "objective")) == 1
        assert len(calls[trial.params["x"]]) == 1
    assert any(r.tags["modelyard.trial.node"] == killed for r in before)
    # Nothing finished on the killed node but what had finished before the kill.
    assert {t.run_id for t in study.trials if t.node == killed} == {
        r.id for r in before if r.tags["modelyard.trial.node"] == killed
    }

    # The trial held on the killed node ran again elsewhere, in the same run.
    (held,) = [c for c in marks(tmp_path) if c["held"]]
    assert held["node"] == killed
    (trial,) = [t for t in study.trials if t.params["x"] == held["x"]]
    assert trial.node != killed
    assert [c["node"] == killed for c in calls[held["x"]]] == [True, False]
    parent = sdk.get_run(study.run_id)
    assert parent.tags["modelyard.study.state"] == "COMPLETED"
    assert json.loads(parent.tags["modelyard.study.space"])["x"]["type"] == "uniform"
