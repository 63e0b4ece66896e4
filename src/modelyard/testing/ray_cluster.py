"""A real multi-node Ray cluster on this machine, for tests and benchmarks.

Built on ``ray.cluster_utils.Cluster`` (Ray's own test helper): a head node plus worker
nodes, each a real raylet with its own object store and worker processes, sharing one
GCS. What works on a 2-core machine with little memory to spare:

- Ray's temp dir in a fresh short ``RAY_TMPDIR`` (socket paths are limited to 107
  bytes, and ``ray.init()`` then finds *this* cluster, not another test's);
- no ``node_ip_address``: Ray replaces 127.0.0.1 with the machine's address when a
  driver connects, so nodes must register under that address too;
- dashboard off, 80 MiB object store per node;
- node failure detected in ~3 s (health checks every second, dead after 3 misses)
  instead of Ray's default ~15 s, so a test that kills a node stays short.

The driver (``ray.init``) is not connected here: executors connect themselves, and on
exit anything still connected is shut down with the cluster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.testing._ports import free_port

OBJECT_STORE_BYTES = 80 * 1024 * 1024
FAST_FAILURE_DETECTION = {
    "health_check_initial_delay_ms": 1000,
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 3,
}
# Warnings Ray's own code raises in a test process, for ``pytest.mark.filterwarnings``
# (the suite turns warnings into errors): ``pytestmark = [pytest.mark.filterwarnings(f)
# for f in RAY_FILTERWARNINGS]``.
RAY_FILTERWARNINGS = (
    # Node.start_ray_client_server leaves its log files open (ray 2.60).
    r"ignore:unclosed file <_io\.TextIOWrapper name='[^']*/ray/session_[^']*/logs/:ResourceWarning",
)
_ENV = ("RAY_TMPDIR", "RAY_USAGE_STATS_ENABLED", "RAY_ADDRESS")


@dataclass
class RayCluster:
    """A running cluster: ``address`` (GCS host:port) and optional Ray Client address."""

    address: str
    client_address: str | None
    _cluster: Any
    _nodes: list[Any] = field(default_factory=list)
    _killed: set[int] = field(default_factory=set)

    cpus_per_node: int = 1

    @property
    def node_ids(self) -> list[str]:
        """Ray node ids, head first, in the order the nodes were started (killed too)."""
        return [str(node.node_id) for node in self._nodes]

    @property
    def live_node_ids(self) -> list[str]:
        """The ids of the nodes not killed."""
        return [nid for i, nid in enumerate(self.node_ids) if i not in self._killed]

    def add_node(self) -> int:
        """Start one more worker node (e.g. to replace a killed one); its index."""
        node = self._cluster.add_node(
            num_cpus=self.cpus_per_node, object_store_memory=OBJECT_STORE_BYTES
        )
        self._cluster.wait_for_nodes()
        self._nodes.append(node)
        return len(self._nodes) - 1

    def kill_node(self, index: int) -> str:
        """Kill node ``index`` (1.. = worker nodes; 0 is the head) abruptly; its id.

        Its raylet and workers get SIGKILL; Ray notices within ~3 s and retries the
        node's tasks elsewhere.
        """
        if index == 0:
            raise ValueError("node 0 is the head: killing it ends the cluster")
        if not 0 < index < len(self._nodes) or index in self._killed:
            raise ValueError(f"no live worker node {index}")
        node = self._nodes[index]
        self._cluster.remove_node(node, allow_graceful=False)
        self._killed.add(index)
        return str(node.node_id)


@contextlib.contextmanager
def ray_cluster(
    nodes: int = 2, cpus_per_node: int = 1, client_port: int | None = None
) -> Iterator[RayCluster]:
    """Start a head node plus ``nodes - 1`` worker nodes; stop everything on exit.

    Args:
        nodes: nodes in all, the head included (>= 1).
        cpus_per_node: logical CPUs each node offers.
        client_port: None for no Ray Client server, 0 for one on a free port, or the port.

    Yields:
        The cluster; ``RAY_TMPDIR`` points at its temp dir meanwhile (restored after).
    """
    if nodes < 1 or cpus_per_node < 1:
        raise ValueError("nodes and cpus_per_node must be >= 1")
    saved = {key: os.environ.get(key) for key in _ENV}
    tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    (tmp / "ray").mkdir()
    os.environ["RAY_TMPDIR"] = str(tmp)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.pop("RAY_ADDRESS", None)
    cluster: Any = None
    try:
        from ray.cluster_utils import Cluster

        port = free_port() if client_port == 0 else client_port
        head_args: dict[str, Any] = {
            "num_cpus": cpus_per_node,
            "object_store_memory": OBJECT_STORE_BYTES,
            "include_dashboard": False,
            "_system_config": FAST_FAILURE_DETECTION,
        }
        if port is not None:
            head_args["ray_client_server_port"] = port
        cluster = Cluster(initialize_head=True, head_node_args=head_args)
        started = [cluster.head_node]
        for _ in range(nodes - 1):
            started.append(
                cluster.add_node(num_cpus=cpus_per_node, object_store_memory=OBJECT_STORE_BYTES)
            )
        cluster.wait_for_nodes()
        yield RayCluster(
            address=str(cluster.address),
            client_address=None if port is None else f"ray://127.0.0.1:{port}",
            _cluster=cluster,
            _nodes=started,
            cpus_per_node=cpus_per_node,
        )
    finally:
        _stop(cluster)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(tmp, ignore_errors=True)


def _stop(cluster: Any) -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
    if cluster is not None:
        cluster.shutdown()
