"""``my.tune``'s arguments are checked up front, each error naming the argument."""

from __future__ import annotations

import json
from typing import Any

import pytest

import modelyard as my
from modelyard.core.errors import InvalidInput
from modelyard.core.tracking import LifecycleStage, Metric, Run, RunStatus
from modelyard.tuning._config import build_config, check_executor, default_study_name
from modelyard.tuning._records import intermediate_of, outcome_tags, trial_from_run, trial_tags
from modelyard.tuning._result import Study, StudyState, Trial, TrialState

SPACE = {"x": my.uniform(0, 1), "k": my.choice(["a", "b"])}


def objective(params: dict[str, Any]) -> float:
    return float(params["x"])


def config(**overrides: Any) -> Any:
    args: dict[str, Any] = {
        "space": SPACE,
        "metric": "auc",
        "mode": "max",
        "n_trials": 10,
        "sampler": "tpe",
        "pruner": "median",
        "workers": None,
        "study": None,
        "seed": None,
        "patience": None,
        "target": None,
        "timeout_s": None,
        "register_best": None,
    }
    args.update(overrides)
    fn = args.pop("fn", objective)
    return build_config(fn, **args)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fn": 3}, "fn must be a function"),
        ({"space": {"x": my.uniform(1, 0)}}, r"space\['x'\]: empty range"),
        ({"metric": "a,b"}, "invalid metric key 'a,b'"),
        ({"metric": 3}, "metric must be a metric name"),
        ({"mode": "maximize"}, "mode must be 'min' or 'max'"),
        ({"n_trials": 0}, "n_trials must be an integer >= 1"),
        ({"n_trials": True}, "n_trials must be an integer >= 1"),
        ({"sampler": "bayes"}, "sampler must be one of"),
        ({"pruner": "hyperband"}, "pruner must be one of"),
        ({"sampler": "grid"}, r"space\['x'\]: the grid sampler needs discrete parameters"),
        ({"study": "it's"}, "study must be 1-200 letters"),
        ({"study": ""}, "study must be 1-200 letters"),
        ({"patience": 0}, "patience must be an integer >= 1"),
        ({"target": float("nan")}, "target must be finite"),
        ({"timeout_s": 0}, "timeout_s must be > 0"),
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"register_best": "/bad"}, "model name '/bad' is invalid"),
    ],
)
def test_every_bad_argument_is_named(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        config(**overrides)


@pytest.mark.parametrize("executor", ["locale", "ray://", "ray://host", "http://h:1", 3])
def test_bad_executors_are_refused_before_anything_opens(executor: object) -> None:
    with pytest.raises(InvalidInput, match="executor must be 'local', 'ray', 'ray://host:port'"):
        check_executor(executor)


def test_good_executors_pass() -> None:
    for executor in ("local", "ray", "ray://127.0.0.1:10001", "ray://head:10001"):
        check_executor(executor)


def test_a_grid_study_is_capped_at_its_grid_size() -> None:
    checked = config(space={"d": my.randint(1, 3), "k": my.choice([1, 2])}, sampler="grid")
    assert checked.n_trials == 6
    assert checked.is_grid


def test_default_study_names_are_the_function_name_and_8_hex() -> None:
    name = default_study_name(objective)
    assert name.startswith("objective-")
    assert len(name.split("-")[-1]) == 8
    assert default_study_name(lambda p: 0.0).startswith("lambda-")


def _run(tags: dict[str, str], status: RunStatus = RunStatus.FINISHED) -> Run:
    return Run(
        id="r1",
        experiment_id=1,
        project="default",
        name="trial-3",
        status=status,
        start_time_ms=1000,
        end_time_ms=3500,
        user="u",
        parent_run_id="p",
        lifecycle_stage=LifecycleStage.ACTIVE,
        tags=tags,
    )


def test_a_stored_trial_reads_back_with_its_intermediate_values() -> None:
    tags = trial_tags(3, {"x": 0.25, "k": "b"})
    tags.update(outcome_tags(TrialState.COMPLETE, 0.5, "node-1", None))
    history = [Metric("auc", v, s, 0) for s, v in [(0, 0.1), (1, 0.3), (2, 0.5)]]
    trial = trial_from_run(_run(tags), "auc", lambda run_id, key: history)
    assert trial == Trial(
        number=3,
        run_id="r1",
        state=TrialState.COMPLETE,
        params={"x": 0.25, "k": "b"},
        value=0.5,
        intermediate={0: 0.1, 1: 0.3},
        error=None,
        node="node-1",
        duration_s=2.5,
    )
    assert json.loads(tags["modelyard.trial.params"]) == {"x": 0.25, "k": "b"}


def test_a_pruned_trial_keeps_its_last_point_and_an_unfinished_one_is_not_a_trial() -> None:
    history = [Metric("auc", 0.1, 0, 0), Metric("auc", 0.2, 1, 0)]
    assert intermediate_of(history, TrialState.PRUNED) == {0: 0.1, 1: 0.2}
    assert intermediate_of(history, TrialState.COMPLETE) == {0: 0.1}
    running = _run(trial_tags(1, {"x": 0.1}), RunStatus.RUNNING)
    assert trial_from_run(running, "auc", lambda r, k: []) is None


def test_the_best_trial_follows_the_mode_and_skips_failures() -> None:
    trials = [
        Trial(0, "a", TrialState.COMPLETE, {"x": 0.1}, 0.3),
        Trial(1, "b", TrialState.FAIL, {"x": 0.2}, None, error="boom"),
        Trial(2, "c", TrialState.PRUNED, {"x": 0.3}, 0.9),
        Trial(3, "d", TrialState.COMPLETE, {"x": 0.4}, 0.7),
    ]
    assert Study("s", "p", "auc", "max", trials, StudyState.COMPLETED).best_params == {"x": 0.4}
    assert Study("s", "p", "auc", "min", trials, StudyState.COMPLETED).best_value == 0.3
    empty = Study("s", "p", "auc", "min", trials[1:3], StudyState.COMPLETED)
    assert empty.best_trial is None
    with pytest.raises(InvalidInput, match="has no completed trial"):
        _ = empty.best_params
