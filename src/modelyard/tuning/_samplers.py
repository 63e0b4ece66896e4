"""Samplers and pruners by name: Optuna's, configured for an ask-and-tell driver.

``grid`` is every point of the discrete grid, each exactly once, in an order shuffled by
the seed. It is not Optuna's ``GridSampler``: that one ends a study through
``Study.stop()``, which ask-and-tell cannot call, and it counts a grid point as visited
only by its own trial numbering, so a resumed study would run points again. The driver
enqueues the grid points instead (``grid_order``); the sampler behind them never runs.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, TypeAlias

from modelyard.core.errors import InvalidInput
from modelyard.tuning._space import Choice, Distribution, Scalar, grid_points

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler
    from optuna.study import StudyDirection

SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "percentile", "successive_halving", "none")
SamplerSpec: TypeAlias = "str | BaseSampler"
PrunerSpec: TypeAlias = "str | BasePruner"


def sampler_name(sampler: object) -> str:
    """The name stored in ``modelyard.study.sampler``; a bad name raises ``InvalidInput``."""
    from optuna.samplers import BaseSampler

    if isinstance(sampler, BaseSampler):
        return type(sampler).__name__
    if sampler not in SAMPLERS:
        raise InvalidInput(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    return str(sampler)


def pruner_name(pruner: object) -> str:
    """The name stored in ``modelyard.study.pruner``; a bad name raises ``InvalidInput``."""
    from optuna.pruners import BasePruner

    if isinstance(pruner, BasePruner):
        return type(pruner).__name__
    if pruner not in PRUNERS:
        raise InvalidInput(f"pruner must be one of {', '.join(PRUNERS)}, got {pruner!r}")
    return str(pruner)


def direction(mode: str) -> StudyDirection:
    """Optuna's direction for ``mode`` ("min" or "max")."""
    from optuna.study import StudyDirection

    return StudyDirection.MAXIMIZE if mode == "max" else StudyDirection.MINIMIZE


def tpe_startup_trials(n_trials: int) -> int:
    """Random trials before TPE models the results: Optuna's 10, fewer for small studies,
    so that an 8-trial study is not 8 random trials."""
    return min(10, max(3, n_trials // 5))


def build_sampler(
    sampler: SamplerSpec, space: Mapping[str, Distribution], seed: int | None, n_trials: int
) -> BaseSampler:
    """The Optuna sampler for a validated name (an Optuna instance passes through)."""
    import optuna

    if not isinstance(sampler, str):
        return sampler
    if sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=tpe_startup_trials(n_trials))
    if sampler == "cmaes":
        # CMA-ES models only numeric parameters; choices are sampled independently, which
        # Optuna would announce once per trial. That is expected here, so it stays quiet.
        categorical = any(isinstance(d, Choice) for d in space.values())
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=not categorical)
    # "random", and "grid" whose points are all enqueued (see the module docstring).
    return optuna.samplers.RandomSampler(seed=seed)


def build_pruner(pruner: PrunerSpec) -> BasePruner:
    """The Optuna pruner for a validated name (an Optuna instance passes through)."""
    import optuna

    if not isinstance(pruner, str):
        return pruner
    if pruner == "median":
        return optuna.pruners.MedianPruner()
    if pruner == "percentile":
        return optuna.pruners.PercentilePruner(25.0)
    if pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def params_key(params: Mapping[str, Scalar]) -> str:
    """A canonical text for a parameter set (to compare grid points with past trials)."""
    return json.dumps(dict(sorted(params.items())))


def grid_order(
    space: Mapping[str, Distribution], seed: int | None, done: Iterable[Mapping[str, Scalar]]
) -> list[dict[str, Scalar]]:
    """The grid points not in ``done``, shuffled by ``seed`` (the same order every time).

    Raises:
        InvalidInput: for a continuous parameter or a grid that is too large.
    """
    points = grid_points(space)
    random.Random(seed if seed is not None else 0).shuffle(points)
    seen = {params_key(p) for p in done}
    return [p for p in points if params_key(p) not in seen]
