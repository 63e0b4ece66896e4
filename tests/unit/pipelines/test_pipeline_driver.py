"""The driver loop against the in-process API, a scripted executor and a fake clock.

The executor never runs a step: a script says what each attempt returns (or that its
worker died), so retries, backoff delays, skips and cache hits are checked exactly and
without sleeping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

import modelyard as my
from modelyard.client import ModelyardClient
from modelyard.core.clock import FakeClock
from modelyard.core.tracking import RunStatus
from modelyard.executors import Resources, WorkerLost
from modelyard.pipelines import Pipeline, StepState
from modelyard.pipelines._cache import code_digest
from modelyard.pipelines._driver import Driver, Plan
from modelyard.pipelines._graph import graph_of
from modelyard.pipelines._outputs import StepOutput
from modelyard.pipelines._result import get_run
from modelyard.pipelines._worker import AttemptResult, StepTask
from modelyard.testing.harness import Api

Outcome = str  # "ok" | "fail" | "type" | "lost"


class ScriptedExecutor:
    """Completes each attempt at once with the next scripted outcome for its step."""

    def __init__(self, script: dict[str, list[Outcome]]) -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.submitted: list[tuple[str, int]] = []

    @property
    def name(self) -> str:
        return "scripted"

    @property
    def slots(self) -> int:
        return 4

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, resources: Resources | None = None
    ) -> Future[Any]:
        task: StepTask = args[0]
        self.submitted.append((task.step, task.attempt))
        queue = self.script.get(task.step)
        outcome = queue.pop(0) if queue else "ok"
        future: Future[Any] = Future()
        if outcome == "lost":
            future.set_exception(WorkerLost("node died"))
        elif outcome == "ok":
            digest = hashlib.sha256(task.step.encode()).hexdigest()
            output = StepOutput(
                "artifact", digest, path=f"outputs/{task.step}.pkl", run_id=task.run_id
            )
            future.set_result(AttemptResult(True, 0.25, "node-a", output))
        else:
            error = "train returned dict, declared int" if outcome == "type" else "ValueError: boom"
            future.set_result(AttemptResult(False, 0.25, "node-a", None, error, outcome != "type"))
        return future

    def close(self) -> None:
        pass


@my.step
def ingest() -> int:
    return 1


@my.step(retries=3, backoff_s=2.0)
def train(ingest: int) -> int:
    return ingest


@my.step
def evaluate(train: int) -> int:
    return train


@my.step
def report(ingest: int) -> int:  # an independent branch
    return ingest


PIPELINE = Pipeline([ingest, train, evaluate, report], name="unit")


@pytest.fixture
def client(api: Api) -> Iterator[ModelyardClient]:
    with api.rest_client() as rest:
        yield rest


def _drive(
    client: ModelyardClient, executor: ScriptedExecutor, clock: FakeClock, sleeps: list[float]
) -> tuple[str, dict[str, Any]]:
    experiment = client.find_experiment("default", "pipelines") or client.create_experiment(
        "default", "pipelines"
    )
    wiring = PIPELINE.wiring({})
    parent = client.create_run(
        experiment.id,
        name="unit-run",
        tags={"modelyard.pipeline": "unit", "modelyard.pipeline.state": "RUNNING"},
    )
    plan = Plan(
        steps={s.name: s for s in PIPELINE.steps},
        wiring=wiring,
        graph=graph_of(wiring),
        values={name: {} for name in wiring},
        value_digests={},
        code={s.name: code_digest(s.fn) for s in PIPELINE.steps},
        return_types=dict.fromkeys(wiring),
        experiment_id=experiment.id,
        parent_run_id=parent.id,
        round=1,
    )

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    driver = Driver(plan, client, executor, {}, clock=clock.monotonic, sleep=sleep)
    driver.create_step_runs()
    return parent.id, driver.run()


def test_retries_wait_the_backoff_and_count_attempts(client: ModelyardClient) -> None:
    executor = ScriptedExecutor({"train": ["fail", "lost", "ok"]})
    sleeps: list[float] = []
    _, results = _drive(client, executor, FakeClock(), sleeps)
    assert sleeps == [2.0, 4.0]  # backoff_s, then doubled
    assert results["train"].state is StepState.SUCCEEDED
    assert results["train"].attempts == 3
    assert results["train"].error is None  # the failed attempts are history
    assert results["evaluate"].state is StepState.SUCCEEDED
    assert ("train", 3) in executor.submitted
    stored = client.get_run(str(results["train"].run_id))
    assert stored.status is RunStatus.FINISHED
    assert stored.tags["modelyard.step.attempts"] == "3"
    assert stored.tags["modelyard.step.node"] == "node-a"
    assert "modelyard.step.error" not in stored.tags
    assert float(stored.tags["modelyard.step.duration_s"]) == pytest.approx(0.5)  # 2 worker reports


def test_a_step_failing_for_good_skips_exactly_its_dependants(client: ModelyardClient) -> None:
    executor = ScriptedExecutor({"train": ["fail"] * 4})
    sleeps: list[float] = []
    _, results = _drive(client, executor, FakeClock(), sleeps)
    assert sleeps == [2.0, 4.0, 8.0]
    assert results["train"].state is StepState.FAILED
    assert results["train"].attempts == 4
    assert results["train"].error == "ValueError: boom"
    assert results["evaluate"].state is StepState.SKIPPED
    assert results["evaluate"].reason == "upstream train failed"
    assert results["report"].state is StepState.SUCCEEDED  # the independent branch ran
    assert ("evaluate", 1) not in executor.submitted
    skipped = client.get_run(str(results["evaluate"].run_id))
    assert skipped.status is RunStatus.KILLED
    assert skipped.tags["modelyard.step.state"] == "SKIPPED"


def test_type_errors_are_not_retried(client: ModelyardClient) -> None:
    executor = ScriptedExecutor({"train": ["type"]})
    sleeps: list[float] = []
    _, results = _drive(client, executor, FakeClock(), sleeps)
    assert sleeps == []
    assert results["train"].attempts == 1
    assert results["train"].error == "train returned dict, declared int"


def test_a_second_run_is_served_from_the_cache(client: ModelyardClient) -> None:
    first = ScriptedExecutor({})
    _drive(client, first, FakeClock(), [])
    again = ScriptedExecutor({})
    parent_id, results = _drive(client, again, FakeClock(), [])
    assert again.submitted == []
    assert {r.state for r in results.values()} == {StepState.CACHED}
    rebuilt = get_run(parent_id, client)
    assert rebuilt.steps["train"].cache_hit
    assert rebuilt.steps["train"].output == results["train"].output
    origin = client.get_run(str(rebuilt.steps["train"].cached_from))
    assert origin.tags["modelyard.step.state"] == "SUCCEEDED"
