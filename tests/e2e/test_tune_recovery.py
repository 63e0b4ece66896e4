"""``my.tune`` when things die: a lost worker, a killed driver; and ``register_best``.

A finished trial is stored by its worker before anything else happens, so neither a
node lost afterwards nor a driver killed mid-study loses it; a resumed study runs only
what is missing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from tune_support import (
    children,
    experiment_runs,
    identity,
    slow,
    tuning_client,
    with_model,
)

import modelyard as my
from modelyard.client import ModelyardClient
from modelyard.core.errors import InvalidInput
from modelyard.core.tracking import RunStatus
from modelyard.executors import Resources, WorkerLost
from modelyard.testing.server_process import ServerProcess, running_server
from modelyard.tracking import fluent
from modelyard.tuning import StudyState, TrialState

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("tune") / "home") as server:
        yield server


@pytest.fixture
def sdk(served: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelyardClient]:
    """The SDK pointed at the module's server, in a fresh experiment; yields a client."""
    yield from tuning_client(served, monkeypatch)


class FlakyExecutor:
    """Runs trials in this process; loses the worker of chosen trials, before or after
    the trial ran (a node that dies mid-trial, or right after its last write)."""

    def __init__(self, lose_before: set[int], lose_after: set[int]) -> None:
        self.lose_before, self.lose_after = lose_before, lose_after

    @property
    def name(self) -> str:
        return "flaky"

    @property
    def slots(self) -> int:
        return 1

    def submit(self, fn: Any, /, *args: Any, resources: Resources | None = None) -> Future[Any]:
        future: Future[Any] = Future()
        number = args[1].number
        if number in self.lose_before:
            future.set_exception(WorkerLost(f"node of trial {number} died"))
            return future
        result = fn(*args)
        if number in self.lose_after:
            future.set_exception(WorkerLost("node died after the trial"))
        else:
            future.set_result(result)
        return future

    def close(self) -> None:
        pass


def test_a_lost_worker_fails_its_trial_but_a_finished_trial_survives(
    sdk: ModelyardClient,
) -> None:
    executor = FlakyExecutor(lose_before={1}, lose_after={2})
    with my.start_run(name="outer") as outer:
        study = my.tune(identity, {"x": my.uniform(0.0, 1.0)}, n_trials=4, executor=executor)
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.COMPLETE,
        TrialState.COMPLETE,
    ]
    lost = sdk.get_run(study.trials[1].run_id)
    assert lost.status is RunStatus.FAILED
    assert lost.tags["modelyard.trial.error"] == "worker lost: node of trial 1 died"
    survived = sdk.get_run(study.trials[2].run_id)
    assert survived.status is RunStatus.FINISHED
    assert survived.tags["modelyard.trial.state"] == "COMPLETE"
    assert study.trials[2].value == study.trials[2].params["x"]
    parent = sdk.get_run(study.run_id)
    assert parent.parent_run_id == outer.id
    assert parent.tags["modelyard.study.executor"] == "flaky"


def test_register_best_registers_the_best_trials_model(sdk: ModelyardClient) -> None:
    study = my.tune(
        with_model,
        {"a": my.choice([1.0, 2.0, 3.0])},
        sampler="grid",
        workers=2,
        register_best="tuned",
    )
    best = study.best_trial
    assert best is not None
    assert best.params == {"a": 2.0}
    assert study.registered is not None
    assert study.registered.version == 1
    assert study.registered.source_run_id == best.run_id
    plain = my.tune(identity, {"x": my.uniform(0, 1)}, n_trials=1, workers=1)
    with pytest.raises(InvalidInput, match=r"logged no model: call my.log_model\(model\)"):
        plain.register_best("tuned")


DRIVER = textwrap.dedent(
    """
    import time
    import modelyard as my

    def slow(params):
        time.sleep(0.2)
        return (params["x"] - 0.5) ** 2

    if __name__ == "__main__":  # local workers are spawned: they import this file
        my.set_experiment({experiment!r})
        my.tune(slow, {{"x": my.uniform(0.0, 1.0)}}, n_trials=8, workers=2, seed=3,
                study="resumable", sampler="random")
    """
)


def test_a_study_whose_driver_died_resumes_without_rerunning_finished_trials(
    sdk: ModelyardClient, served: ServerProcess, tmp_path: Path
) -> None:
    experiment = fluent._get().current_experiment()
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(experiment=experiment.name))
    env = {**served.env(), "MODELYARD_TRACKING_URI": served.uri}
    driver = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            trials = [r for r in experiment_runs(sdk) if "modelyard.trial" in r.tags]
            done = [r for r in trials if "modelyard.trial.state" in r.tags]
            if len(done) >= 3 and len(done) < len(trials):  # and some still running
                break
            assert driver.poll() is None, "the driver exited before it was killed"
            time.sleep(0.05)
        else:
            pytest.fail("no trial finished in 60 s")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and its workers: a dead machine
        driver.wait()

    parent = next(r for r in experiment_runs(sdk) if r.name == "resumable")
    assert parent.tags["modelyard.study.state"] == "RUNNING"
    before = {r.id: r for r in children(sdk, parent)}
    finished_before = {i: r for i, r in before.items() if "modelyard.trial.state" in r.tags}
    running_before = {i: r for i, r in before.items() if i not in finished_before}
    assert len(finished_before) >= 3

    study = my.tune(
        slow,
        {"x": my.uniform(0.0, 1.0)},
        n_trials=8,
        workers=2,
        seed=3,
        study="resumable",
        sampler="random",
    )
    assert study.state is StudyState.COMPLETED
    assert study.run_id == parent.id
    assert len(study.trials) == 8
    assert len({t.number for t in study.trials}) == 8
    by_run = {t.run_id: t for t in study.trials}
    for run_id, run in finished_before.items():  # kept, not run again
        assert run_id in by_run
        after = sdk.get_run(run_id)
        assert after.end_time_ms == run.end_time_ms or run.end_time_ms is None
        assert len(sdk.metric_history(run_id, "objective")) == 1
    rerun_params = [t.params for t in study.trials if t.run_id not in before]
    for run_id, run in running_before.items():  # killed, and their params ran again first
        assert sdk.get_run(run_id).status is RunStatus.KILLED
        assert json.loads(run.tags["modelyard.trial.params"]) in rerun_params
    after_parent = sdk.get_run(parent.id)
    assert after_parent.tags["modelyard.study.state"] == "COMPLETED"
    assert after_parent.status is RunStatus.FINISHED

    again = my.tune(
        slow, {"x": my.uniform(0.0, 1.0)}, n_trials=8, study="resumable", sampler="random"
    )
    assert [t.run_id for t in again.trials] == [t.run_id for t in study.trials]
