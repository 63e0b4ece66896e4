"""``my.Pipeline`` on a real 2-node Ray cluster (1 CPU per node) and a real server.

One cluster and one server for the module. A diamond (ingest → squares, cubes →
combine): the two middle steps run at the same time, so with one CPU per node they
must run on different nodes; their steps log a dataset and artifacts from the Ray
workers, which the driver loads back (verified by digest).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from ray_support import RAY_MARKS, dead_address, disconnect, point_sdk, two_node_cluster

import modelyard as my
from modelyard.client import ModelyardClient
from modelyard.core.tracking import RunStatus
from modelyard.executors import ExecutorUnavailable
from modelyard.pipelines import PipelineRun, PipelineState, StepState
from modelyard.testing.ray_cluster import RayCluster
from modelyard.testing.server_process import ServerProcess, running_server
from modelyard.tracking import fluent

pytestmark = RAY_MARKS


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    with two_node_cluster() as running:
        yield running


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("pipeline-ray") / "home") as server:
        yield server


@pytest.fixture
def client(
    served: ServerProcess, cluster: RayCluster, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelyardClient]:
    """The SDK on the module's server, ``RAY_ADDRESS`` on the cluster; a REST client."""
    assert not ray.is_initialized()
    point_sdk(served, cluster, monkeypatch)
    try:
        with ModelyardClient(served.uri, served.admin_token) as rest:
            yield rest
    finally:
        disconnect()
        fluent._reset_for_tests()


@my.step
def ingest(folder: str, rows: int = 12) -> my.DatasetRef:
    path = Path(folder) / "numbers.csv"
    path.write_text("n\n" + "".join(f"{i}\n" for i in range(rows)))
    version = my.log_dataset(path, "numbers")
    return my.DatasetRef(version.dataset, version.version)


@my.step
def squares(ingest: my.DatasetRef) -> list[int]:
    frame = my.use_dataset(str(ingest), as_="pandas")
    time.sleep(0.5)  # overlaps with cubes: one CPU per node, so another node runs it
    return [int(n) ** 2 for n in frame["n"]]


@my.step
def cubes(ingest: my.DatasetRef) -> list[int]:
    frame = my.use_dataset(str(ingest), as_="pandas")
    time.sleep(0.5)
    return [int(n) ** 3 for n in frame["n"]]


def combine(squares: list[int], cubes: list[int]) -> dict[str, int]:
    """A plain function (a step with the defaults): importable by name here, not on the
    Ray workers, so it must travel by value like the decorated ones."""
    my.log_metric("total", float(sum(squares) + sum(cubes)))
    return {"squares": sum(squares), "cubes": sum(cubes)}


DIAMOND = my.Pipeline([ingest, squares, cubes, combine], name="diamond")
EXPECTED = {"squares": sum(n**2 for n in range(12)), "cubes": sum(n**3 for n in range(12))}


def _states(run: PipelineRun) -> dict[str, str]:
    return {name: r.state.value for name, r in run.steps.items()}


def test_a_diamond_spreads_over_the_nodes_and_reruns_from_cache(
    client: ModelyardClient, cluster: RayCluster, tmp_path: Path
) -> None:
    params = {"folder": str(tmp_path)}
    first = DIAMOND.run(executor="ray", experiment="diamond", params=params)
    assert not ray.is_initialized()  # the run's own connection is closed again
    first.raise_for_state()
    assert _states(first) == dict.fromkeys(DIAMOND.graph, "SUCCEEDED")
    assert DIAMOND.graph == {
        "ingest": [],
        "squares": ["ingest"],
        "cubes": ["ingest"],
        "combine": ["squares", "cubes"],
    }

    # Where each step ran: a node of the cluster, as recorded on its run.
    for name, result in first.steps.items():
        assert result.node in cluster.node_ids, name
        run = client.get_run(str(result.run_id))
        assert run.tags["modelyard.step.node"] == result.node
        assert run.status is RunStatus.FINISHED
        assert run.parent_run_id == first.run_id
    assert {first.steps["squares"].node, first.steps["cubes"].node} == set(cluster.node_ids)

    # Outputs: a dataset version written on a worker, artifacts verified on load.
    assert first.output("ingest") == my.DatasetRef("numbers", 1)
    assert first.output("squares") == [n**2 for n in range(12)]
    assert first.output("combine") == EXPECTED
    dataset = client.get_dataset_version("default", "numbers@v1")
    ingest_output = first.steps["ingest"].output
    assert ingest_output is not None
    assert (ingest_output.kind, ingest_output.digest) == ("dataset", dataset.manifest_digest)
    combine_run = client.get_run(str(first.steps["combine"].run_id))
    assert combine_run.metrics["total"].value == EXPECTED["squares"] + EXPECTED["cubes"]
    assert json.loads(combine_run.tags["modelyard.step.output"])["path"] == "outputs/combine.pkl"
    parent = client.get_run(first.run_id)
    assert parent.tags["modelyard.pipeline.executor"] == "ray"
    assert parent.tags["modelyard.pipeline.state"] == "SUCCEEDED"

    second = DIAMOND.run(executor="ray", experiment="diamond", params=params)
    assert second.state is PipelineState.SUCCEEDED
    assert second.run_id != first.run_id
    assert _states(second) == dict.fromkeys(DIAMOND.graph, "CACHED")
    for name, result in second.steps.items():
        assert result.state is StepState.CACHED
        assert result.attempts == 0
        assert result.cached_from == first.steps[name].run_id
    assert second.output("combine") == EXPECTED
    assert [v.version for v in client.list_dataset_versions("default", "numbers")] == [1]


def test_an_address_nobody_listens_on_writes_nothing(
    client: ModelyardClient, tmp_path: Path
) -> None:
    address = dead_address()
    with pytest.raises(ExecutorUnavailable, match=f"Ray at {address} does not answer"):
        DIAMOND.run(executor=address, experiment="unreachable", params={"folder": str(tmp_path)})
    assert client.find_experiment("default", "unreachable") is None
    assert not list(tmp_path.iterdir())  # no step ran either
    assert not ray.is_initialized()
