"""Search spaces: validation names the parameter, JSON round-trips, samples stay in range."""

from __future__ import annotations

import json
import math
from typing import Any

import hypothesis.strategies as st
import optuna
import pytest
from hypothesis import HealthCheck, given, settings

import modelyard as my
from modelyard.core.errors import InvalidInput
from modelyard.tuning._pruning import quiet_optuna
from modelyard.tuning._space import (
    Choice,
    Distribution,
    LogUniform,
    RandInt,
    Uniform,
    contains,
    grid_points,
    space_from_json,
    space_to_json,
    to_optuna,
    validate_space,
)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"lr": my.uniform(1.0, 1.0)}, r"space\['lr'\]: empty range"),
        ({"lr": my.uniform(2.0, 1.0)}, r"space\['lr'\]: empty range"),
        ({"lr": my.loguniform(0.0, 1.0)}, r"space\['lr'\]: loguniform needs low > 0"),
        ({"lr": my.loguniform(-1.0, 1.0)}, r"space\['lr'\]: loguniform needs low > 0"),
        ({"depth": my.randint(5, 2)}, r"space\['depth'\]: empty range"),
        ({"depth": my.randint(3, 3)}, r"space\['depth'\]: randint\(3, 3\) has a single"),
        ({"depth": my.randint(1.5, 3)}, r"space\['depth'\]: low must be an integer"),
        ({"x": my.uniform("0", 1)}, r"space\['x'\]: low must be a number"),
        ({"x": my.uniform(0, math.inf)}, r"space\['x'\]: high must be finite"),
        ({"x": my.uniform(0, 1, step=0)}, r"space\['x'\]: step must be > 0"),
        ({"x": my.uniform(0, 1, step=0.3)}, r"space\['x'\]: .* not a multiple of step"),
        ({"k": my.choice([])}, r"space\['k'\]: choice needs at least one value"),
        ({"k": my.choice(["a", "a"])}, r"space\['k'\]: choice values must be distinct"),
        ({"k": my.choice([[1, 2]])}, r"space\['k'\]: choice values must be str"),
        ({"k": my.choice("rbf")}, r"space\['k'\]: choice needs a list"),
        ({"k": (0, 1)}, r"space\['k'\]: expected my.uniform"),
        ({"bad key!": my.uniform(0, 1)}, r"invalid param key 'bad key!'"),
        ({}, r"space must be a non-empty dict"),
    ],
)
def test_bad_spaces_name_the_parameter(space: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate_space(space)


def test_the_json_form_is_the_documented_one() -> None:
    space = {
        "lr": my.loguniform(0.0001, 0.1),
        "depth": my.randint(2, 12),
        "x": my.uniform(0, 1),
        "kernel": my.choice(["rbf", "linear"]),
    }
    assert json.loads(space_to_json(space)) == {
        "lr": {"type": "loguniform", "low": 0.0001, "high": 0.1},
        "depth": {"type": "randint", "low": 2, "high": 12},
        "x": {"type": "uniform", "low": 0.0, "high": 1.0, "step": None},
        "kernel": {"type": "choice", "values": ["rbf", "linear"]},
    }
    assert list(json.loads(space_to_json(space))) == ["lr", "depth", "x", "kernel"]


def test_space_from_json_rejects_unknown_types() -> None:
    with pytest.raises(InvalidInput, match=r"space\['a'\]: unknown distribution"):
        space_from_json('{"a": {"type": "normal"}}')
    with pytest.raises(InvalidInput, match="not valid JSON"):
        space_from_json("{")


def test_randint_includes_its_high_end_and_a_step_grid_is_exact() -> None:
    points = grid_points({"d": my.randint(2, 4), "x": my.uniform(0.1, 0.3, step=0.1)})
    assert [p["d"] for p in points] == [2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert [p["x"] for p in points[:3]] == [0.1, 0.2, 0.3]


def test_grid_over_a_continuous_parameter_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"space\['lr'\]: the grid sampler needs discrete"):
        grid_points({"k": my.choice([1, 2]), "lr": my.loguniform(1e-3, 1.0)})


# --- Hypothesis: any valid space round-trips and its samples stay in range ---------------

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@st.composite
def distributions(draw: st.DrawFn) -> Distribution:
    kind = draw(st.sampled_from(["uniform", "step", "log", "int", "choice"]))
    if kind == "int":
        low = draw(st.integers(-1000, 1000))
        return RandInt(low, low + draw(st.integers(1, 1000)))
    if kind == "choice":
        values = draw(
            st.lists(
                st.one_of(st.text(max_size=5), st.integers(-5, 5), st.booleans(), st.none()),
                min_size=1,
                max_size=5,
                unique_by=json.dumps,
            )
        )
        return Choice(tuple(values))
    if kind == "log":
        bottom = draw(st.floats(1e-6, 1e3))
        return LogUniform(bottom, bottom * draw(st.floats(1.01, 1e3)))
    if kind == "step":  # dyadic bounds: high - low is exactly a multiple of the step
        start = draw(st.integers(-4000, 4000)) / 4
        step = draw(st.sampled_from([0.5, 1.0, 0.25, 2.0]))
        return Uniform(start, start + step * draw(st.integers(1, 50)), step)
    origin = draw(finite)
    return Uniform(origin, origin + draw(st.floats(1e-3, 1e6)))


spaces = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), distributions(), min_size=1, max_size=4
)


@given(spaces)
def test_every_valid_space_round_trips_through_json(space: dict[str, Distribution]) -> None:
    checked = validate_space(space)
    assert space_from_json(space_to_json(checked)) == checked


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spaces, st.sampled_from(["random", "tpe"]), st.integers(0, 2**16))
def test_every_sampled_value_lies_in_its_range(
    space: dict[str, Distribution], sampler_name: str, seed: int
) -> None:
    checked = validate_space(space)
    sampler: optuna.samplers.BaseSampler = (
        optuna.samplers.RandomSampler(seed=seed)
        if sampler_name == "random"
        else optuna.samplers.TPESampler(seed=seed, n_startup_trials=3)
    )
    with quiet_optuna():
        study = optuna.create_study(sampler=sampler)
        for i in range(6):
            trial = study.ask(to_optuna(checked))
            for name, value in trial.params.items():
                assert contains(checked[name], value), (name, value, checked[name])
            study.tell(trial, float(i))
