"""Everything ``my.tune`` is given, checked before anything is written.

Every error is ``InvalidInput`` naming the argument (or the parameter of the space).
"""

from __future__ import annotations

import math
import numbers
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from modelyard.core.errors import InvalidInput
from modelyard.executors import Executor
from modelyard.tracking.validation import validate_key
from modelyard.tuning._samplers import (
    PrunerSpec,
    SamplerSpec,
    pruner_name,
    sampler_name,
)
from modelyard.tuning._space import Distribution, grid_points, space_to_json, validate_space
from modelyard.tuning._stopping import StopRules

_STUDY_NAME = re.compile(r"^[\w.\-: ]{1,200}$")
MODES = ("min", "max")


@dataclass(frozen=True)
class StudyConfig:
    """A validated study definition."""

    name: str
    metric: str
    mode: str
    space: dict[str, Distribution]
    space_json: str
    n_trials: int
    sampler: SamplerSpec
    sampler_name: str
    pruner: PrunerSpec
    pruner_name: str
    seed: int | None
    rules: StopRules
    workers: int | None
    register_best: str | None

    @property
    def is_grid(self) -> bool:
        return self.sampler == "grid"


def default_study_name(fn: Callable[..., object]) -> str:
    """``<function name>-<8 hex>``; characters a study name cannot hold are dropped."""
    base = re.sub(r"[^\w.\-]", "", getattr(fn, "__name__", "") or "") or "study"
    return f"{base[:180]}-{secrets.token_hex(4)}"


def _int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidInput(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise InvalidInput(f"{name} must be finite, got {value!r}")
    return float(value)


def check_executor(executor: object) -> None:
    """``local``, ``ray``, ``ray://host:port`` or an ``Executor``; else ``InvalidInput``."""
    if isinstance(executor, str):
        if executor in ("local", "ray") or re.fullmatch(r"ray://[^\s/:]+:\d{1,5}", executor):
            return
    elif isinstance(executor, Executor):
        return
    raise InvalidInput(
        f"executor must be 'local', 'ray', 'ray://host:port' or an Executor, got {executor!r}"
    )


def build_config(
    fn: object,
    *,
    space: object,
    metric: object,
    mode: object,
    n_trials: object,
    sampler: object,
    pruner: object,
    workers: object,
    study: object,
    seed: object,
    patience: object,
    target: object,
    timeout_s: object,
    register_best: object,
) -> StudyConfig:
    """Check every argument of ``my.tune``; raise ``InvalidInput`` naming the first bad one."""
    if not callable(fn):
        raise InvalidInput(f"fn must be a function taking one dict of params, got {fn!r}")
    checked_space = validate_space(space)
    if not isinstance(metric, str):
        raise InvalidInput(f"metric must be a metric name, got {metric!r}")
    validate_key("metric", metric)
    if mode not in MODES:
        raise InvalidInput(f"mode must be 'min' or 'max', got {mode!r}")
    total = _int("n_trials", n_trials, 1)
    s_name, p_name = sampler_name(sampler), pruner_name(pruner)
    if sampler == "grid":
        total = min(total, len(grid_points(checked_space)))
    name = default_study_name(fn) if study is None else study
    if not isinstance(name, str) or not _STUDY_NAME.match(name):
        raise InvalidInput(f"study must be 1-200 letters, digits, spaces and _ . - :, got {name!r}")
    rules = StopRules(
        mode=str(mode),
        patience=None if patience is None else _int("patience", patience, 1),
        target=None if target is None else _finite("target", target),
        timeout_s=None if timeout_s is None else _finite("timeout_s", timeout_s),
    )
    if rules.timeout_s is not None and rules.timeout_s <= 0:
        raise InvalidInput(f"timeout_s must be > 0, got {timeout_s!r}")
    if register_best is not None:
        from modelyard.registry.service import validate_model_name

        if not isinstance(register_best, str):
            raise InvalidInput(f"register_best must be a model name, got {register_best!r}")
        validate_model_name(register_best)
    return StudyConfig(
        name=name,
        metric=metric,
        mode=str(mode),
        space=checked_space,
        space_json=space_to_json(checked_space),
        n_trials=total,
        sampler=sampler,  # type: ignore[arg-type]
        sampler_name=s_name,
        pruner=pruner,  # type: ignore[arg-type]
        pruner_name=p_name,
        seed=None if seed is None else _int("seed", seed, 0),
        rules=rules,
        workers=None if workers is None else _int("workers", workers, 1),
        register_best=register_best,
    )
