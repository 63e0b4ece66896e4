"""Pruning decided in the worker from a snapshot of the finished trials."""

from __future__ import annotations

import optuna
import pytest

import modelyard as my
from modelyard.core.errors import InvalidInput
from modelyard.tuning._pruning import PruneJudge, SnapshotTrial, quiet_optuna
from modelyard.tuning._samplers import (
    build_pruner,
    build_sampler,
    grid_order,
    pruner_name,
    sampler_name,
)
from modelyard.tuning._space import Scalar, contains, to_optuna, validate_space

SPACE = validate_space({"x": my.uniform(0.0, 1.0), "k": my.choice(["a", "b"])})
PARAMS: dict[str, Scalar] = {"x": 0.5, "k": "a"}


def curve(level: float, steps: int = 5) -> dict[int, float]:
    return {step: level + 1.0 / (step + 1) for step in range(steps)}


def completed(*levels: float) -> tuple[SnapshotTrial, ...]:
    return tuple(SnapshotTrial("COMPLETE", lv, curve(lv)) for lv in levels)


def test_median_prunes_a_trial_worse_than_the_median_and_keeps_a_better_one() -> None:
    snapshot = completed(0.1, 0.2, 0.3, 0.4, 0.5)
    bad = PruneJudge("median", "min", SPACE, PARAMS, snapshot)
    assert bad.report(0, 5.0) is True
    good = PruneJudge("median", "min", SPACE, PARAMS, snapshot)
    assert good.report(0, 1.0) is False
    assert good.report(1, 0.6) is False


def test_the_direction_matters() -> None:
    snapshot = completed(0.1, 0.2, 0.3, 0.4, 0.5)
    assert PruneJudge("median", "max", SPACE, PARAMS, snapshot).report(0, 5.0) is False
    assert PruneJudge("median", "max", SPACE, PARAMS, snapshot).report(0, 0.0) is True


def test_median_waits_for_its_startup_trials_and_ignores_pruned_ones() -> None:
    few = completed(0.1, 0.2, 0.3, 0.4)
    assert PruneJudge("median", "min", SPACE, PARAMS, few).report(0, 5.0) is False
    pruned = tuple(SnapshotTrial("PRUNED", 9.0, {0: 9.0}) for _ in range(5))
    assert PruneJudge("median", "min", SPACE, PARAMS, few + pruned).report(0, 5.0) is False


def test_none_never_prunes_and_nan_is_pruned() -> None:
    snapshot = completed(0.1, 0.2, 0.3, 0.4, 0.5)
    assert PruneJudge("none", "min", SPACE, PARAMS, snapshot).report(0, 1e9) is False
    assert PruneJudge("median", "min", SPACE, PARAMS, snapshot).report(0, float("nan")) is True


def test_a_step_reported_twice_keeps_the_first_value_without_a_warning() -> None:
    judge = PruneJudge("median", "min", SPACE, PARAMS, completed(0.1, 0.2, 0.3, 0.4, 0.5))
    assert judge.report(0, 1.0) is False
    assert judge.report(0, 99.0) is False  # still judged on 1.0


def test_successive_halving_uses_the_rung_values_other_trials_recorded() -> None:
    # min_resource="auto" is estimated from completed trials: one is enough here.
    seen = (SnapshotTrial("COMPLETE", 1.0, {1: 1.0}),)
    first = PruneJudge("successive_halving", "min", SPACE, PARAMS, seen)
    assert first.report(1, 0.5) is False
    attrs = first.system_attrs()
    assert attrs == {"completed_rung_0": 0.5}
    rivals = tuple(
        SnapshotTrial("COMPLETE", v, {1: v}, {"completed_rung_0": v}) for v in [0.1, 0.2, 0.3]
    )
    assert PruneJudge("successive_halving", "min", SPACE, PARAMS, rivals).report(1, 0.9) is True
    assert PruneJudge("successive_halving", "min", SPACE, PARAMS, rivals).report(1, 0.05) is False


@pytest.mark.parametrize("name", ["tpe", "random", "grid", "cmaes"])
def test_every_sampler_builds_and_samples_inside_the_space(name: str) -> None:
    space = validate_space({"x": my.uniform(0, 1, step=0.25), "k": my.choice(["a", "b"])})
    sampler = build_sampler(name, space, seed=3, n_trials=20)
    with quiet_optuna():
        study = optuna.create_study(sampler=sampler)
        for i in range(12):  # past CMA-ES's startup: categorical params go independent
            trial = study.ask(to_optuna(space))
            assert all(contains(space[k], v) for k, v in trial.params.items())
            study.tell(trial, float(i % 5))


def test_names_are_checked_and_instances_pass_through() -> None:
    with pytest.raises(InvalidInput, match="sampler must be one of tpe, random, grid, cmaes"):
        sampler_name("bayes")
    with pytest.raises(InvalidInput, match="pruner must be one of median"):
        pruner_name("hyperband")
    assert sampler_name(optuna.samplers.RandomSampler()) == "RandomSampler"
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1)
    assert build_pruner(pruner) is pruner
    assert isinstance(build_pruner("percentile"), optuna.pruners.PercentilePruner)


def test_the_grid_order_is_seeded_and_skips_points_already_run() -> None:
    space = validate_space({"d": my.randint(1, 3), "k": my.choice(["a", "b"])})
    order = grid_order(space, 7, [])
    assert len(order) == 6
    assert order == grid_order(space, 7, [])
    assert order != grid_order(space, 8, []) or order != grid_order(space, 9, [])
    rest = grid_order(space, 7, [order[0], order[3]])
    assert rest == [p for i, p in enumerate(order) if i not in (0, 3)]
