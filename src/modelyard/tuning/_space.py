"""Search spaces: ``uniform``, ``loguniform``, ``randint``, ``choice``, their JSON form and
their Optuna distributions.

The constructors only record what they were given; ``validate_space`` checks everything
when a study starts, so every error names the parameter (``space['lr']: ...``) and comes
before anything is written.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias

from modelyard.core.errors import InvalidInput
from modelyard.tracking.validation import validate_key

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

Scalar: TypeAlias = str | int | float | bool | None


@dataclass(frozen=True)
class Uniform:
    """A float in ``[low, high]``; with ``step`` the grid ``low, low + step, ..., high``."""

    low: float
    high: float
    step: float | None = None


@dataclass(frozen=True)
class LogUniform:
    """A float in ``[low, high]`` (``low > 0``), sampled uniformly in log space."""

    low: float
    high: float


@dataclass(frozen=True)
class RandInt:
    """An int in ``[low, high]``: both ends included, as in Optuna's ``suggest_int``."""

    low: int
    high: int


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (JSON scalars: str, int, float, bool or None)."""

    values: tuple[Scalar, ...]


Distribution: TypeAlias = Uniform | LogUniform | RandInt | Choice
Space: TypeAlias = Mapping[str, Distribution]


def uniform(low: float, high: float, step: float | None = None) -> Uniform:
    """A float in ``[low, high]``; ``step=q`` restricts it to the grid ``low + k*q``."""
    return Uniform(low, high, step)


def loguniform(low: float, high: float) -> LogUniform:
    """A float in ``[low, high]`` sampled on a log scale (for learning rates); low > 0."""
    return LogUniform(low, high)


def randint(low: int, high: int) -> RandInt:
    """An integer in ``[low, high]``, **high included** (Optuna's convention)."""
    return RandInt(low, high)


def choice(values: Sequence[Scalar]) -> Choice:
    """One of ``values``: a non-empty list of distinct JSON scalars."""
    # Anything but a list or tuple is kept as given, for validate_space to name the param.
    return Choice(tuple(values) if isinstance(values, list | tuple) else values)  # type: ignore[arg-type]


# --- validation --------------------------------------------------------------------------


def _number(where: str, name: str, value: object, *, integer: bool = False) -> float:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        wanted = "an integer" if integer else "a number"
        raise InvalidInput(f"{where}: {name} must be {wanted}, got {value!r}")
    if not math.isfinite(value):
        raise InvalidInput(f"{where}: {name} must be finite, got {value!r}")
    return float(value)


def _check_range(where: str, low: float, high: float) -> None:
    if low >= high:
        raise InvalidInput(f"{where}: empty range, low={low:g} must be < high={high:g}")


def _validate_one(name: str, dist: object) -> Distribution:
    where = f"space[{name!r}]"
    if isinstance(dist, Uniform):
        low, high = _number(where, "low", dist.low), _number(where, "high", dist.high)
        _check_range(where, low, high)
        if dist.step is not None:
            step = _number(where, "step", dist.step)
            if step <= 0:
                raise InvalidInput(f"{where}: step must be > 0, got {dist.step!r}")
            span = (Decimal(str(high)) - Decimal(str(low))) / Decimal(str(step))
            if span != span.to_integral_value():
                raise InvalidInput(
                    f"{where}: (high - low) = {high - low:g} is not a multiple of step {step:g}"
                )
            return Uniform(low, high, step)
        return Uniform(low, high)
    if isinstance(dist, LogUniform):
        low, high = _number(where, "low", dist.low), _number(where, "high", dist.high)
        if low <= 0:
            raise InvalidInput(f"{where}: loguniform needs low > 0, got {dist.low!r}")
        _check_range(where, low, high)
        return LogUniform(low, high)
    if isinstance(dist, RandInt):
        low = _number(where, "low", dist.low, integer=True)
        high = _number(where, "high", dist.high, integer=True)
        if low > high:
            raise InvalidInput(f"{where}: empty range, low={low:g} must be <= high={high:g}")
        if low == high:
            raise InvalidInput(f"{where}: randint({low:g}, {high:g}) has a single value")
        return RandInt(int(low), int(high))
    if isinstance(dist, Choice):
        if not isinstance(dist.values, tuple):
            raise InvalidInput(f"{where}: choice needs a list of values, got {dist.values!r}")
        if not dist.values:
            raise InvalidInput(f"{where}: choice needs at least one value")
        for value in dist.values:
            if value is not None and not isinstance(value, str | int | float | bool):
                raise InvalidInput(
                    f"{where}: choice values must be str, int, float, bool or None, "
                    f"got {type(value).__name__}"
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidInput(f"{where}: choice values must be finite, got {value!r}")
        if len({json.dumps(v) for v in dist.values}) != len(dist.values):
            raise InvalidInput(f"{where}: choice values must be distinct")
        return dist
    raise InvalidInput(
        f"{where}: expected my.uniform, my.loguniform, my.randint or my.choice, "
        f"got {type(dist).__name__}"
    )


def validate_space(space: object) -> dict[str, Distribution]:
    """The space checked and normalized (numbers as float/int), in the user's order.

    Raises:
        InvalidInput: naming the parameter, for any empty range, bad bound or bad value.
    """
    if not isinstance(space, Mapping) or not space:
        raise InvalidInput("space must be a non-empty dict of {param name: my.uniform(...)}")
    checked: dict[str, Distribution] = {}
    for name, dist in space.items():
        if not isinstance(name, str):
            raise InvalidInput(f"space: parameter names must be strings, got {name!r}")
        validate_key("param", name)
        checked[name] = _validate_one(name, dist)
    return checked


# --- JSON --------------------------------------------------------------------------------


def _to_dict(dist: Distribution) -> dict[str, Any]:
    if isinstance(dist, Uniform):
        return {"type": "uniform", "low": dist.low, "high": dist.high, "step": dist.step}
    if isinstance(dist, LogUniform):
        return {"type": "loguniform", "low": dist.low, "high": dist.high}
    if isinstance(dist, RandInt):
        return {"type": "randint", "low": dist.low, "high": dist.high}
    return {"type": "choice", "values": list(dist.values)}


def space_to_json(space: Space) -> str:
    """The ``modelyard.study.space`` tag: ``{"lr": {"type": "loguniform", ...}, ...}``."""
    return json.dumps({name: _to_dict(dist) for name, dist in validate_space(space).items()})


def space_from_json(text: str) -> dict[str, Distribution]:
    """The space a ``modelyard.study.space`` tag describes (validated).

    Raises:
        InvalidInput: if the text is not a space written by ``space_to_json``.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"study space is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput("study space must be a JSON object")
    space: dict[str, object] = {}
    for name, item in data.items():
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "uniform":
            space[name] = Uniform(item.get("low"), item.get("high"), item.get("step"))
        elif kind == "loguniform":
            space[name] = LogUniform(item.get("low"), item.get("high"))
        elif kind == "randint":
            space[name] = RandInt(item.get("low"), item.get("high"))
        elif kind == "choice" and isinstance(item.get("values"), list):
            space[name] = Choice(tuple(item["values"]))
        else:
            raise InvalidInput(f"space[{name!r}]: unknown distribution {item!r}")
    return validate_space(space)


# --- Optuna and grids --------------------------------------------------------------------


def to_optuna(space: Mapping[str, Distribution]) -> dict[str, BaseDistribution]:
    """Optuna distributions for a validated space (same keys, same order)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, BaseDistribution] = {}
    for name, dist in space.items():
        if isinstance(dist, Uniform):
            out[name] = FloatDistribution(dist.low, dist.high, step=dist.step)
        elif isinstance(dist, LogUniform):
            out[name] = FloatDistribution(dist.low, dist.high, log=True)
        elif isinstance(dist, RandInt):
            out[name] = IntDistribution(dist.low, dist.high)
        else:
            out[name] = CategoricalDistribution(dist.values)
    return out


def contains(dist: Distribution, value: object) -> bool:
    """Whether ``value`` is one ``dist`` can produce (steps checked to 1e-9 of a step)."""
    if isinstance(dist, Choice):
        return any(type(value) is type(v) and value == v for v in dist.values)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(dist, RandInt):
        return isinstance(value, int) and dist.low <= value <= dist.high
    if not dist.low <= value <= dist.high:
        return False
    if isinstance(dist, Uniform) and dist.step is not None:
        k = (value - dist.low) / dist.step
        return abs(k - round(k)) < 1e-9
    return True


def grid_values(name: str, dist: Distribution) -> list[Scalar]:
    """Every value of a discrete parameter, in order.

    Raises:
        InvalidInput: for a continuous parameter (uniform without step, loguniform).
    """
    if isinstance(dist, Choice):
        return list(dist.values)
    if isinstance(dist, RandInt):
        return list(range(dist.low, dist.high + 1))
    if isinstance(dist, Uniform) and dist.step is not None:
        low, step = Decimal(str(dist.low)), Decimal(str(dist.step))
        count = int((Decimal(str(dist.high)) - low) / step) + 1
        return [float(low + i * step) for i in range(count)]
    raise InvalidInput(
        f"space[{name!r}]: the grid sampler needs discrete parameters "
        "(my.choice, my.randint or my.uniform(low, high, step=q))"
    )


MAX_GRID_POINTS = 100_000


def grid_points(space: Mapping[str, Distribution]) -> list[dict[str, Scalar]]:
    """The full grid (cartesian product) of a discrete space, in the user's key order.

    Raises:
        InvalidInput: for a continuous parameter, or a grid over ``MAX_GRID_POINTS``.
    """
    axes = {name: grid_values(name, dist) for name, dist in space.items()}
    size = math.prod(len(values) for values in axes.values())
    if size > MAX_GRID_POINTS:
        raise InvalidInput(f"space: the grid has {size} points; the limit is {MAX_GRID_POINTS}")
    names = list(axes)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]
