"""Shared by the Ray end-to-end modules of tuning and pipelines: the cluster, the SDK
pointed at a server and at the cluster, and a log of where each call ran.

The pytest process is the Ray driver. Executors connect and disconnect themselves;
what a test connects itself it must shut down, and ``two_node_cluster`` shuts down
anything left over, so no module leaves ``ray.is_initialized()`` True for the next.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import ray

from modelyard.executors import ExecutorUnavailable
from modelyard.executors._probe import probe
from modelyard.testing._ports import free_port
from modelyard.testing.ray_cluster import RAY_FILTERWARNINGS, RayCluster, ray_cluster
from modelyard.testing.server_process import ServerProcess
from modelyard.tracking import fluent

T = TypeVar("T")

# ``pytestmark`` of every Ray end-to-end module.
RAY_MARKS = [pytest.mark.slow, *(pytest.mark.filterwarnings(f) for f in RAY_FILTERWARNINGS)]


@contextlib.contextmanager
def two_node_cluster() -> Iterator[RayCluster]:
    """A head and one worker node (1 CPU each) with a Ray Client port; on exit no
    driver connection is left in this process."""
    with ray_cluster(nodes=2, cpus_per_node=1, client_port=0) as cluster:
        try:
            assert cluster.client_address is not None
            # The Ray Client server starts listening a moment after the nodes are up.
            wait_for("the Ray Client port", partial(_answers, cluster.client_address), 60)
            yield cluster
        finally:
            disconnect()
    assert not ray.is_initialized()


def disconnect() -> None:
    """Shut this process's Ray connection down, if any."""
    if ray.is_initialized():
        ray.shutdown()


def _answers(address: str) -> bool | None:
    try:
        probe(address)
    except ExecutorUnavailable:
        return None
    return True


def point_sdk(server: ServerProcess, cluster: RayCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK logs to ``server``; ``executor="ray"`` joins ``cluster`` (``RAY_ADDRESS``)."""
    monkeypatch.setenv("MODELYARD_HOME", str(server.home))
    monkeypatch.setenv("MODELYARD_TRACKING_URI", server.uri)
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    fluent._reset_for_tests()


def dead_address() -> str:
    """A Ray Client address nobody listens on."""
    return f"ray://127.0.0.1:{free_port()}"


def restore_nodes(cluster: RayCluster, live: int = 2) -> None:
    """Start worker nodes until ``live`` nodes are alive (after a test killed one)."""
    while len(cluster.live_node_ids) < live:
        cluster.add_node()


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 120.0) -> T:
    """Poll ``probe`` until it returns something other than None (generous: busy cores).

    Raises:
        TimeoutError: ``probe`` gave nothing within ``timeout_s`` (the message says ``what``).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:g} s for {what}")
        time.sleep(0.05)


# --- a log of calls: what ran where (a killed call cannot report it itself) -------------


def mark(folder: Path, **fields: Any) -> None:
    """Record one call in ``folder`` (one file per call; workers on any node of this
    machine write there)."""
    name = f"{time.time_ns()}-{uuid.uuid4().hex}"
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps(fields))
    tmp.rename(folder / f"{name}.json")  # a reader never sees half a record


def marks(folder: Path) -> list[dict[str, Any]]:
    """The calls recorded in ``folder``, oldest first."""
    paths = sorted(folder.glob("*.json"), key=lambda p: int(p.name.partition("-")[0]))
    return [json.loads(p.read_text()) for p in paths]
