"""The Ray executor on a real 2-node Ray cluster started on this machine.

One cluster for the whole module (starting Ray costs ~7 s here). The driver connection
is shared too, through ``Driver``, and reopened on demand, so each test may run alone.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import ray

from modelyard.core.errors import InvalidInput
from modelyard.executors import (
    Executor,
    ExecutorUnavailable,
    Resources,
    WorkerLost,
    current_node,
    open_executor,
)
from modelyard.testing.ray_cluster import RAY_FILTERWARNINGS, RayCluster, ray_cluster

pytestmark = [pytest.mark.slow, *(pytest.mark.filterwarnings(f) for f in RAY_FILTERWARNINGS)]


class TrialDiverged(Exception):
    """Defined here: Ray workers cannot import this module, so it travels by value."""


def node_after(delay_s: float) -> str:
    time.sleep(delay_s)
    return current_node()


def diverge(lr: float) -> float:
    raise TrialDiverged(f"loss is nan at lr={lr}")


def read_env(key: str) -> str | None:
    return os.environ.get(key)


def crash() -> None:
    os._exit(7)


class Driver:
    """This process's connection to the cluster, as one owning ``ray`` executor."""

    def __init__(self, cluster: RayCluster) -> None:
        self.cluster = cluster
        self._executor: Executor | None = None

    def executor(self) -> Executor:
        if self._executor is None:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("RAY_ADDRESS", self.cluster.address)
                self._executor = open_executor("ray", env={"MODELYARD_PROJECT": "ray-demo"})
        return self._executor

    def disconnect(self) -> None:
        if self._executor is not None:
            self._executor.close()
            self._executor = None


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    with ray_cluster(nodes=2, cpus_per_node=1, client_port=0) as running:
        yield running


@pytest.fixture(scope="module")
def driver(cluster: RayCluster) -> Iterator[Driver]:
    connection = Driver(cluster)
    yield connection
    connection.disconnect()


def test_tasks_spread_over_both_nodes(driver: Driver) -> None:
    executor = driver.executor()
    assert (executor.name, executor.slots) == ("ray", len(driver.cluster.live_node_ids))
    futures = [executor.submit(node_after, 0.3) for _ in range(6)]
    nodes = {f.result(timeout=60) for f in futures}
    assert nodes == set(driver.cluster.live_node_ids)
    assert current_node() == socket.gethostname()  # the driver is no Ray task


def test_a_user_exception_keeps_its_original_type(driver: Driver) -> None:
    future = driver.executor().submit(diverge, 0.5)
    with pytest.raises(TrialDiverged, match=r"loss is nan at lr=0\.5") as info:
        future.result(timeout=60)
    assert type(info.value) is TrialDiverged
    with pytest.raises(ValueError, match="invalid literal"):
        driver.executor().submit(lambda: int("not a number")).result(timeout=60)


def test_env_reaches_the_tasks(driver: Driver) -> None:
    executor = driver.executor()
    assert executor.submit(read_env, "MODELYARD_PROJECT").result(timeout=60) == "ray-demo"


def test_resources_the_cluster_lacks_are_rejected_at_submit(driver: Driver) -> None:
    executor = driver.executor()
    with pytest.raises(InvalidInput, match=r"resources\.gpu = 1 .*\(0 GPUs\)"):
        executor.submit(read_env, "X", resources=Resources(gpu=1))
    with pytest.raises(InvalidInput, match=r"resources\.cpu = 64"):
        executor.submit(read_env, "X", resources=Resources(cpu=64))
    half = Resources(cpu=0.5, memory_mb=32)
    assert executor.submit(read_env, "MODELYARD_PROJECT", resources=half).result(60) == "ray-demo"


def test_a_crashing_worker_is_worker_lost_after_retries(driver: Driver) -> None:
    with pytest.raises(WorkerLost, match="WorkerCrashedError"):
        driver.executor().submit(crash).result(timeout=60)


def mark_then_sleep(folder: str, delay_s: float) -> str:
    """Leave a trace of where the task started (a killed task cannot report it)."""
    node = current_node()
    (Path(folder) / f"{node}-{os.getpid()}-{time.time_ns()}").touch()
    time.sleep(delay_s)
    return node


def test_tasks_of_a_killed_node_complete_on_the_other_node(driver: Driver, tmp_path: Path) -> None:
    executor = driver.executor()
    cluster = driver.cluster
    victim = len(cluster.node_ids) - 1
    futures = [executor.submit(mark_then_sleep, str(tmp_path), 1.0) for _ in range(4)]
    deadline = time.monotonic() + 30
    while not any(p.name.startswith(cluster.node_ids[victim]) for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline, "no task started on the victim node"
        time.sleep(0.05)
    killed = cluster.kill_node(victim)
    results = [f.result(timeout=60) for f in futures]  # none lost: all four complete
    assert killed not in results  # the task that was running there ran again elsewhere
    assert set(results) <= set(cluster.live_node_ids)
    cluster.add_node()  # the next tests see two live nodes again


def test_an_existing_connection_is_reused_and_left_open(driver: Driver) -> None:
    owner = driver.executor()  # this process is connected now, as after a user's ray.init
    assert ray.is_initialized()
    with closing(open_executor("ray", env={"TRIAL_GROUP": "reused"})) as reused:
        assert reused.submit(read_env, "TRIAL_GROUP").result(timeout=60) == "reused"
    assert ray.is_initialized()
    assert owner.submit(read_env, "MODELYARD_PROJECT").result(timeout=60) == "ray-demo"


def test_the_ray_client_address_works(driver: Driver) -> None:
    driver.disconnect()  # Ray Client needs a process without another connection
    address = driver.cluster.client_address
    assert address is not None
    with closing(open_executor(address, env={"MODELYARD_PROJECT": "via-client"})) as executor:
        assert executor.name == address
        assert executor.slots == len(driver.cluster.live_node_ids)
        assert executor.submit(read_env, "MODELYARD_PROJECT").result(60) == "via-client"
        assert executor.submit(node_after, 0.0).result(60) in driver.cluster.live_node_ids
        with pytest.raises(TrialDiverged):
            executor.submit(diverge, 1.0).result(timeout=60)
        assert current_node() == socket.gethostname()  # a client driver is no Ray task
    assert not ray.is_initialized()


@pytest.mark.parametrize("spec", ["ray", "ray:auto"])
def test_ray_without_an_address_joins_the_cluster_of_this_machine(
    driver: Driver, spec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver.disconnect()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # found via RAY_TMPDIR instead
    with closing(open_executor(spec)) as executor:
        assert executor.slots == len(driver.cluster.live_node_ids)
        assert executor.submit(node_after, 0.0).result(60) in driver.cluster.live_node_ids
    assert not ray.is_initialized()


def test_an_address_nobody_listens_on_fails_fast() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ExecutorUnavailable, match=f"Ray at ray://127.0.0.1:{port} does not"):
        open_executor(f"ray://127.0.0.1:{port}")
    assert time.monotonic() - started < 3.5
