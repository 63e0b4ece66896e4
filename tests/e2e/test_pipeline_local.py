"""Pipelines end to end: a real server, the local executor's worker processes, real runs.

One server and one pool of two workers serve the whole module (spawning workers costs
about a second each); every test uses its own experiment, so caches never cross.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelyard as my
from modelyard.client import ModelyardClient
from modelyard.config import Settings
from modelyard.core.errors import IntegrityError, InvalidInput, Unavailable
from modelyard.core.tracking import RunStatus
from modelyard.executors import worker_env
from modelyard.executors._local import LocalExecutor
from modelyard.pipelines import PipelineRun, PipelineState, StepFailed, StepState, get_run
from modelyard.testing.server_process import ServerProcess, running_server
from modelyard.tracking import fluent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("pipelines") / "home") as server:
        yield server


@pytest.fixture(scope="module")
def pool(served: ServerProcess) -> Iterator[LocalExecutor]:
    """The SDK pointed at ``served``, and two local workers logging to it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELYARD_HOME", str(served.home))
        patch.setenv("MODELYARD_TRACKING_URI", served.uri)
        patch.delenv("MODELYARD_TOKEN", raising=False)
        fluent._reset_for_tests()
        executor = LocalExecutor(2, worker_env(Settings()))

        def warm() -> None:  # start both workers now (the pool starts them on demand)
            import modelyard.pipelines._worker  # noqa: F401

            time.sleep(0.5)

        try:
            for started in [executor.submit(warm), executor.submit(warm)]:
                started.result()
            yield executor
        finally:
            executor.close()
            fluent._reset_for_tests()


@pytest.fixture
def client(served: ServerProcess, pool: LocalExecutor) -> Iterator[ModelyardClient]:
    with ModelyardClient(served.uri, served.admin_token) as rest:
        yield rest


# --- a four-step pipeline ----------------------------------------------------------------


@my.step
def ingest(rows: int = 20) -> list[int]:
    return list(range(rows))


@my.step
def featurize(data: list[int], scale: float = 2.0) -> list[float]:
    return [x * scale for x in data]


@my.step(retries=1, backoff_s=0.05)
def train(featurize: list[float], depth: int = 3) -> dict[str, float]:
    return {"weight": sum(featurize) / len(featurize), "depth": float(depth)}


@my.step
def evaluate(train: dict[str, float], ingest: list[int]) -> float:
    my.log_metric("score", train["weight"] / max(ingest))
    return train["weight"] / max(ingest)


FOUR = my.Pipeline([ingest, featurize, train, evaluate], name="four")


def _states(run: PipelineRun) -> dict[str, str]:
    return {name: r.state.value for name, r in run.steps.items()}


def test_runs_caches_and_reruns_what_changed(pool: LocalExecutor, client: ModelyardClient) -> None:
    first = FOUR.run(executor=pool, experiment="four")
    first.raise_for_state()
    assert first.state is PipelineState.SUCCEEDED
    assert _states(first) == dict.fromkeys(FOUR.graph, "SUCCEEDED")
    assert first.output("evaluate") == pytest.approx(1.0)  # mean(2x) / max(x) for 0..19
    assert first.output("train") == {"weight": 19.0, "depth": 3.0}

    parent = client.get_run(first.run_id)
    assert parent.name.startswith("four-")
    assert parent.status is RunStatus.FINISHED
    assert parent.tags["modelyard.pipeline"] == "four"
    assert parent.tags["modelyard.pipeline.state"] == "SUCCEEDED"
    assert json.loads(parent.tags["modelyard.pipeline.graph"]) == FOUR.graph
    evaluate_run = client.get_run(str(first.steps["evaluate"].run_id))
    assert evaluate_run.parent_run_id == first.run_id
    assert evaluate_run.status is RunStatus.FINISHED
    assert evaluate_run.metrics["score"].value == pytest.approx(1.0)  # logged by the step
    output = json.loads(
        client.get_run(str(first.steps["train"].run_id)).tags["modelyard.step.output"]
    )
    assert output["kind"] == "artifact"
    assert output["path"] == "outputs/train.pkl"
    assert [a.path for a in client.list_run_artifacts(str(first.steps["train"].run_id))] == [
        "outputs/train.pkl"
    ]
    assert client.get_run(str(first.steps["featurize"].run_id)).params == {"scale": "2.0"}

    started = time.monotonic()
    second = FOUR.run(executor=pool, experiment="four")
    assert time.monotonic() - started < 3.0
    assert _states(second) == dict.fromkeys(FOUR.graph, "CACHED")
    assert all(r.cache_hit and r.attempts == 0 for r in second.steps.values())
    assert second.steps["train"].cached_from == first.steps["train"].run_id
    assert second.output("evaluate") == pytest.approx(1.0)

    third = FOUR.run(executor=pool, experiment="four", params={"scale": 3.0})
    assert _states(third) == {
        "ingest": "CACHED",
        "featurize": "SUCCEEDED",
        "train": "SUCCEEDED",
        "evaluate": "SUCCEEDED",
    }
    assert third.output("train")["weight"] == pytest.approx(28.5)

    rebuilt = get_run(third.run_id)
    assert _states(rebuilt) == _states(third)
    assert rebuilt.graph == FOUR.graph
    assert rebuilt.output("train") == third.output("train")


def test_bad_input_writes_nothing(pool: LocalExecutor, client: ModelyardClient) -> None:
    with pytest.raises(InvalidInput, match="no step has a parameter named 'scael'"):
        FOUR.run(executor=pool, experiment="typo", params={"scael": 3})
    with pytest.raises(InvalidInput, match="unknown executor 'dask'"):
        FOUR.run(executor="dask", experiment="typo")
    with pytest.raises(InvalidInput, match="workers must be an integer"):
        FOUR.run(experiment="typo", workers=0)
    assert client.find_experiment("default", "typo") is None


@my.step
def left() -> tuple[float, float]:
    started = time.time()
    time.sleep(0.3)
    return started, time.time()


@my.step
def right() -> tuple[float, float]:
    started = time.time()
    time.sleep(0.3)
    return started, time.time()


def test_independent_steps_run_at_the_same_time(pool: LocalExecutor) -> None:
    run = my.Pipeline([left, right], name="parallel").run(executor=pool, experiment="parallel")
    run.raise_for_state()
    (a_start, a_end), (b_start, b_end) = run.output("left"), run.output("right")
    assert max(a_start, b_start) < min(a_end, b_end)  # the two intervals overlap
    assert run.steps["left"].node  # where it ran: this host's name


# --- retries, failures, resume ------------------------------------------------------------


@my.step(retries=2, backoff_s=0.05)
def flaky(counter: str) -> int:
    path = Path(counter)
    attempt = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempt))
    if attempt < 3:
        raise ConnectionError(f"attempt {attempt} lost the connection")
    return attempt


def test_a_flaky_step_succeeds_on_retry(pool: LocalExecutor, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    run = my.Pipeline([flaky], name="flaky").run(
        executor=pool, experiment="flaky", params={"counter": str(counter)}
    )
    run.raise_for_state()
    assert run.steps["flaky"].attempts == 3
    assert run.output("flaky") == 3
    assert counter.read_text() == "3"


@my.step
def source() -> list[int]:
    return [1, 2, 3]


@my.step(retries=1, backoff_s=0.01)
def fragile(source: list[int], flag: str) -> int:
    if Path(flag).exists():
        raise RuntimeError("the feature store is down")
    return sum(source)


@my.step
def fit(fragile: int) -> int:
    return fragile * 10


@my.step
def publish(fit: int) -> str:
    return f"model {fit}"


@my.step
def audit(source: list[int]) -> int:
    return len(source)


BRANCHY = my.Pipeline([source, fragile, fit, publish, audit], name="branchy")


def test_a_failure_skips_its_dependants_and_resume_reruns_only_them(
    pool: LocalExecutor, client: ModelyardClient, tmp_path: Path
) -> None:
    flag = tmp_path / "down"
    flag.touch()
    failed = BRANCHY.run(executor=pool, experiment="branchy", params={"flag": str(flag)})
    assert failed.state is PipelineState.FAILED
    assert _states(failed) == {
        "source": "SUCCEEDED",
        "fragile": "FAILED",
        "fit": "SKIPPED",
        "publish": "SKIPPED",
        "audit": "SUCCEEDED",  # the independent branch still ran
    }
    assert failed.steps["fragile"].attempts == 2
    assert failed.steps["fragile"].error == "RuntimeError: the feature store is down"
    assert failed.steps["publish"].reason == "upstream fragile failed"
    with pytest.raises(StepFailed, match="step 'fragile' failed: RuntimeError: the feature"):
        failed.raise_for_state()
    parent = client.get_run(failed.run_id)
    assert parent.status is RunStatus.FAILED
    assert parent.tags["modelyard.pipeline.state"] == "FAILED"
    assert client.get_run(str(failed.steps["fragile"].run_id)).status is RunStatus.FAILED

    flag.unlink()
    resumed = BRANCHY.run(
        executor=pool, experiment="branchy", params={"flag": str(flag)}, resume=failed.run_id
    )
    resumed.raise_for_state()
    assert resumed.run_id == failed.run_id
    assert _states(resumed) == {
        "source": "SUCCEEDED",
        "fragile": "SUCCEEDED",
        "fit": "SUCCEEDED",
        "publish": "SUCCEEDED",
        "audit": "SUCCEEDED",
    }
    for reused in ("source", "audit"):  # the very same step runs, not re-run
        assert resumed.steps[reused].run_id == failed.steps[reused].run_id
    for rerun in ("fragile", "fit", "publish"):  # new child runs; the old ones stay
        assert resumed.steps[rerun].run_id != failed.steps[rerun].run_id
        old = client.get_run(str(failed.steps[rerun].run_id))
        assert old.parent_run_id == failed.run_id
    assert resumed.output("publish") == "model 60"
    assert get_run(failed.run_id).state is PipelineState.SUCCEEDED

    other = my.Pipeline([source], name="other")
    with pytest.raises(InvalidInput, match="is a run of pipeline 'branchy', not 'other'"):
        other.run(executor=pool, resume=failed.run_id)


@my.step(retries=2, backoff_s=0.01)
def make_features(rows: int = 3) -> my.DatasetRef:
    return {"rows": rows}  # type: ignore[return-value]


def test_the_wrong_return_type_fails_clearly_and_is_not_retried(pool: LocalExecutor) -> None:
    run = my.Pipeline([make_features], name="typed").run(executor=pool, experiment="typed")
    assert run.steps["make_features"].state is StepState.FAILED
    assert run.steps["make_features"].error == "make_features returned dict, declared DatasetRef"
    assert run.steps["make_features"].attempts == 1


# --- datasets and lineage, tampering --------------------------------------------------------


@my.step
def produce(folder: str) -> my.DatasetRef:
    path = Path(folder) / "features.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    version = my.log_dataset(path, "features")
    return my.DatasetRef(version.dataset)  # @latest: recorded as the concrete version


@my.step
def consume(produce: my.DatasetRef) -> int:
    frame = my.use_dataset(str(produce), as_="pandas")
    return len(frame)


def test_a_dataset_output_is_a_lineage_edge_between_the_step_runs(
    pool: LocalExecutor, client: ModelyardClient, tmp_path: Path
) -> None:
    run = my.Pipeline([produce, consume], name="data").run(
        executor=pool, experiment="data", params={"folder": str(tmp_path)}
    )
    run.raise_for_state()
    output = run.steps["produce"].output
    assert output is not None
    assert (output.kind, output.ref) == ("dataset", "features@v1")
    version = client.get_dataset_version("default", "features@v1")
    assert output.digest == version.manifest_digest
    assert run.output("produce") == my.DatasetRef("features", 1)
    assert run.output("consume") == 2

    graph = client.lineage("default", "dataset", "features@v1")
    edges = {(e["src"], e["type"], e["dst"]) for e in graph["edges"]}
    dataset = graph["root"]
    assert (f"run:{run.steps['produce'].run_id}", "output", dataset) in edges
    assert (dataset, "input", f"run:{run.steps['consume'].run_id}") in edges


@my.step
def weights() -> list[float]:
    return [0.5, 0.25]


@my.step(cache=False)
def score(weights: list[float]) -> float:
    return sum(weights)


def test_a_tampered_output_is_refused(
    pool: LocalExecutor, served: ServerProcess, tmp_path: Path
) -> None:
    pipeline = my.Pipeline([weights, score], name="tamper")
    run = pipeline.run(executor=pool, experiment="tamper")
    run.raise_for_state()
    output = run.steps["weights"].output
    assert output is not None
    blob = served.home / "artifacts" / "sha256" / output.digest[:2] / output.digest
    assert blob.is_file()
    blob.chmod(0o644)
    blob.write_bytes(b"\x80\x04K\x2a.")  # a valid pickle of 42: loading it would "work"
    # The server breaks off the transfer of a blob failing its digest; had any bytes
    # arrived, the client would refuse them for their sha256: never unpickled either way.
    with pytest.raises((IntegrityError, Unavailable), match=r"outputs/weights\.pkl"):
        run.output("weights")

    again = pipeline.run(executor=pool, experiment="tamper")  # weights cached, score runs
    assert again.steps["weights"].state is StepState.CACHED
    assert again.steps["score"].state is StepState.FAILED
    assert again.steps["score"].attempts == 1
    assert "outputs/weights.pkl" in (again.steps["score"].error or "")
