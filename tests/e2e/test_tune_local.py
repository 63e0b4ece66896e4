"""``my.tune`` against a real server, trials in local worker processes.

One server for the module (each test tunes in its own experiment). Objectives take
a few milliseconds; the time goes into starting the two worker processes per study.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tune_support import (
    broken,
    by_case,
    children,
    constant,
    experiment_runs,
    identity,
    learning_curve,
    quadratic,
    tuning_client,
)

import modelyard as my
from modelyard.client import ModelyardClient
from modelyard.core.errors import InvalidInput
from modelyard.core.tracking import RunStatus
from modelyard.testing.server_process import ServerProcess, running_server
from modelyard.tuning import StudyFailed, StudyState, TrialState
from modelyard.tuning._samplers import grid_order
from modelyard.tuning._space import validate_space

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("tune") / "home") as server:
        yield server


@pytest.fixture
def sdk(served: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelyardClient]:
    """The SDK pointed at the module's server, in a fresh experiment; yields a client."""
    yield from tuning_client(served, monkeypatch)


def test_a_tpe_study_finds_the_optimum_and_stores_parent_and_trials(
    sdk: ModelyardClient,
) -> None:
    space = {"x": my.uniform(-2.0, 2.0), "kernel": my.choice(["rbf", "linear"])}
    study = my.tune(
        quadratic,
        space,
        metric="loss",
        mode="min",
        n_trials=10,
        workers=2,
        seed=0,
        study="quad",
        pruner="none",
    )
    assert study.state is StudyState.COMPLETED
    assert [t.number for t in study.trials] == list(range(10))
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    assert study.best_value < 0.1
    assert study.best_params["kernel"] == "rbf"
    best = study.best_trial
    assert best is not None

    parent = sdk.get_run(study.run_id)
    assert parent.name == "quad"
    assert parent.status is RunStatus.FINISHED
    tags = {k: v for k, v in parent.tags.items() if k.startswith(("modelyard.", "best."))}
    assert tags == {
        "modelyard.study": "quad",
        "modelyard.study.metric": "loss",
        "modelyard.study.mode": "min",
        "modelyard.study.sampler": "tpe",
        "modelyard.study.pruner": "none",
        "modelyard.study.executor": "local",
        "modelyard.study.n_trials": "10",
        "modelyard.study.space": json.dumps(
            {
                "x": {"type": "uniform", "low": -2.0, "high": 2.0, "step": None},
                "kernel": {"type": "choice", "values": ["rbf", "linear"]},
            }
        ),
        "modelyard.study.state": "COMPLETED",
        "modelyard.study.best_trial": str(best.number),
        "modelyard.study.best_run": best.run_id,
        "best.x": str(best.params["x"]),
        "best.kernel": "rbf",
    }
    assert parent.metrics["loss"].value == study.best_value

    runs = children(sdk, parent)
    assert [r.name for r in runs] == [f"trial-{n}" for n in range(10)]
    for run, trial in zip(runs, study.trials, strict=True):
        assert run.id == trial.run_id
        assert run.status is RunStatus.FINISHED
        assert run.tags["modelyard.trial.state"] == "COMPLETE"
        assert json.loads(run.tags["modelyard.trial.params"]) == trial.params
        assert float(run.tags["modelyard.trial.value"]) == trial.value
        assert run.tags["modelyard.trial.node"]
        assert run.params == {"x": str(trial.params["x"]), "kernel": str(trial.params["kernel"])}
        assert run.metrics["loss"].value == trial.value
        assert run.metrics["abs_x"].value == abs(float(trial.params["x"]))


def test_pruning_stops_trials_with_a_bad_curve(sdk: ModelyardClient) -> None:
    study = my.tune(
        learning_curve,
        {"x": my.uniform(0.0, 1.0)},
        metric="loss",
        n_trials=14,
        sampler="random",
        pruner="median",
        workers=2,
        seed=1,
    )
    assert study.state is StudyState.COMPLETED
    pruned = [t for t in study.trials if t.state is TrialState.PRUNED]
    complete = [t for t in study.trials if t.state is TrialState.COMPLETE]
    assert pruned, [(t.state, t.params) for t in study.trials]
    assert len(complete) >= 5  # the median pruner's startup trials
    for trial in pruned:
        run = sdk.get_run(trial.run_id)
        assert run.status is RunStatus.FINISHED
        assert run.tags["modelyard.trial.state"] == "PRUNED"
        history = sdk.metric_history(trial.run_id, "loss")
        assert 1 <= len(history) < 6
        assert [m.step for m in history] == sorted(trial.intermediate)
    for trial in complete:  # six reported steps, then the final value
        assert len(sdk.metric_history(trial.run_id, "loss")) == 7
    best = study.best_trial
    assert best is not None
    assert all(best.params["x"] <= t.params["x"] for t in pruned)


def test_early_stopping_by_target_and_by_patience(sdk: ModelyardClient) -> None:
    study = my.tune(
        identity,
        {"x": my.uniform(0.0, 1.0)},
        mode="max",
        n_trials=40,
        target=0.8,
        sampler="random",
        seed=2,
        workers=2,
    )
    assert study.state is StudyState.STOPPED
    assert study.stop_reason is not None
    assert study.stop_reason.startswith("target reached")
    assert study.best_value >= 0.8
    assert len(study.trials) < 40
    parent = sdk.get_run(study.run_id)
    assert parent.tags["modelyard.study.state"] == "STOPPED"
    assert parent.tags["modelyard.study.stop_reason"] == study.stop_reason

    timed = my.tune(identity, {"x": my.uniform(0.0, 1.0)}, n_trials=100, timeout_s=0.3)
    assert timed.state is StudyState.STOPPED
    assert timed.stop_reason is not None
    assert timed.stop_reason.startswith("timeout")
    assert len(timed.trials) < 100

    flat = my.tune(constant, {"x": my.uniform(0.0, 1.0)}, n_trials=30, patience=3, workers=2)
    assert flat.state is StudyState.STOPPED
    assert flat.stop_reason == "patience: 3 finished trials without improvement"
    assert 4 <= len(flat.trials) <= 5  # one best, three without, one still in flight


def test_failing_trials_are_recorded_and_the_study_goes_on(sdk: ModelyardClient) -> None:
    cases = ["float", "dict", "logged", "raise", "nan", "silent", "text"]
    space = {"case": my.choice(cases)}
    seed = next(
        s for s in range(100) if grid_order(validate_space(space), s, [])[0]["case"] == "float"
    )
    study = my.tune(by_case, space, metric="loss", sampler="grid", seed=seed, workers=1)
    assert study.state is StudyState.COMPLETED
    by_name = {t.params["case"]: t for t in study.trials}
    assert len(by_name) == 7
    assert {k: t.value for k, t in by_name.items() if t.state is TrialState.COMPLETE} == {
        "float": 1.0,
        "dict": 2.0,
        "logged": 3.0,
    }
    errors = {k: t.error for k, t in by_name.items() if t.state is TrialState.FAIL}
    assert errors["raise"] == "ValueError: case raise is broken"
    assert errors["nan"] == "the objective's 'loss' is NaN"
    assert errors["silent"] is not None
    assert "returned None and logged no 'loss'" in errors["silent"]
    assert errors["text"] is not None
    assert "the objective returned str" in errors["text"]
    failed = sdk.get_run(by_name["raise"].run_id)
    assert failed.status is RunStatus.FAILED
    assert failed.tags["modelyard.trial.state"] == "FAIL"
    assert failed.tags["modelyard.trial.error"] == "ValueError: case raise is broken"
    assert "modelyard.trial.value" not in failed.tags
    assert len(sdk.metric_history(by_name["logged"].run_id, "loss")) == 1  # not logged twice


def test_three_failing_first_trials_fail_the_study_fast(sdk: ModelyardClient) -> None:
    with pytest.raises(StudyFailed, match="the first 3 trials failed; the first error: KeyError"):
        my.tune(broken, {"x": my.uniform(0, 1)}, n_trials=20, workers=2, study="doomed")
    parent = next(r for r in experiment_runs(sdk) if r.name == "doomed")
    assert parent.status is RunStatus.FAILED
    assert parent.tags["modelyard.study.state"] == "FAILED"
    assert len(children(sdk, parent)) <= 4


def test_grid_random_and_cmaes_samplers_run(sdk: ModelyardClient) -> None:
    grid_space = {"d": my.randint(1, 2), "x": my.uniform(0.0, 1.0, step=0.5)}
    grid = my.tune(identity, grid_space, n_trials=50, sampler="grid", workers=2)
    assert len(grid.trials) == 6
    assert sorted((t.params["d"], t.params["x"]) for t in grid.trials) == [
        (d, x) for d in (1, 2) for x in (0.0, 0.5, 1.0)
    ]
    assert sdk.get_run(grid.run_id).tags["modelyard.study.n_trials"] == "6"
    for sampler in ("random", "cmaes"):
        space = {"x": my.uniform(0.0, 1.0), "k": my.choice(["a", "b"]), "n": my.randint(1, 4)}
        study = my.tune(identity, space, n_trials=6, sampler=sampler, seed=5, workers=2)
        assert len(study.trials) == 6
        assert all(t.state is TrialState.COMPLETE for t in study.trials)
        assert all(0.0 <= t.params["x"] <= 1.0 and t.params["k"] in "ab" for t in study.trials)
        assert sdk.get_run(study.run_id).tags["modelyard.study.sampler"] == sampler


def test_bad_input_writes_nothing(sdk: ModelyardClient) -> None:
    my.tune(identity, {"x": my.uniform(0, 1)}, n_trials=2, workers=1, study="kept")
    before = {r.id: (r.status, r.tags) for r in experiment_runs(sdk)}
    bad_calls: list[tuple[dict[str, Any], str]] = [
        ({"space": {"x": my.uniform(1, 1)}}, r"space\['x'\]: empty range"),
        ({"space": {"x": my.uniform(0, 1)}, "sampler": "grid"}, r"space\['x'\]: the grid"),
        ({"sampler": "bayes"}, "sampler must be one of"),
        ({"metric": "bad,metric"}, "invalid metric key"),
        ({"n_trials": 0}, "n_trials must be"),
        ({"executor": "lokal"}, "executor must be"),
        ({"study": "kept", "mode": "max"}, "study 'kept' exists .* with mode 'min', not 'max'"),
        (
            {"study": "kept", "space": {"x": my.uniform(0, 2)}},
            r"study 'kept' exists .*space\['x'\] is .* here",
        ),
    ]
    for overrides, message in bad_calls:
        args: dict[str, Any] = {"space": {"x": my.uniform(0, 1)}, **overrides}
        with pytest.raises(InvalidInput, match=message):
            my.tune(identity, args.pop("space"), **args)
    assert {r.id: (r.status, r.tags) for r in experiment_runs(sdk)} == before


def test_report_outside_a_trial_only_logs(sdk: ModelyardClient) -> None:
    with my.start_run(name="plain") as run:
        my.report(0, 0.5)
        my.report(1, 0.25, metric="loss")
        with pytest.raises(InvalidInput, match="report: step must be an integer >= 0"):
            my.report(-1, 0.1)
        with pytest.raises(InvalidInput, match="report: value must be a number"):
            my.report(2, "high")
    assert [m.value for m in sdk.metric_history(run.id, "objective")] == [0.5]
    assert [m.step for m in sdk.metric_history(run.id, "loss")] == [1]
