"""``@my.step``: a function with the options a pipeline runs it with."""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar, overload

from modelyard.core.errors import InvalidInput
from modelyard.executors import Resources
from modelyard.pipelines._graph import ParamSpec as WiringParam
from modelyard.pipelines._graph import StepSpec

P = ParamSpec("P")
R = TypeVar("R")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


def validate_name(kind: str, name: object) -> str:
    """A step or pipeline name: 1-100 letters, digits, ``_ . -``, starting alphanumeric."""
    if not isinstance(name, str) or NAME_RE.fullmatch(name) is None:
        raise InvalidInput(
            f"{kind}: invalid name {name!r}: use 1-100 letters, digits, _ . - "
            "(starting with a letter or digit)"
        )
    return name


class Step(Generic[P, R]):
    """A pipeline step. Calling it calls the function directly (no run, no cache)."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        cache: bool = True,
        retries: int = 0,
        backoff_s: float = 1.0,
        resources: Resources | Mapping[str, Any] | None = None,
        version: str = "1",
        name: str | None = None,
    ) -> None:
        if not callable(fn):
            raise InvalidInput(f"step: {fn!r} is not a function")
        self.fn = fn
        self.name = validate_name("step", name if name is not None else _fn_name(fn))
        where = f"step {self.name!r}"
        if not isinstance(cache, bool):
            raise InvalidInput(f"{where}: cache must be True or False, got {cache!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
            raise InvalidInput(f"{where}: retries must be an integer in [0, 100], got {retries!r}")
        if (
            isinstance(backoff_s, bool)
            or not isinstance(backoff_s, int | float)
            or not math.isfinite(backoff_s)
            or backoff_s < 0
        ):
            raise InvalidInput(f"{where}: backoff_s must be a number >= 0, got {backoff_s!r}")
        if not isinstance(version, str) or not version:
            raise InvalidInput(f"{where}: version must be a non-empty string, got {version!r}")
        try:
            self.resources = Resources.of(resources)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc.message}") from None
        except AttributeError:
            raise InvalidInput(
                f"{where}: resources must be a mapping like {{'cpu': 1}}, got {resources!r}"
            ) from None
        self.cache = cache
        self.retries = retries
        self.backoff_s = float(backoff_s)
        self.version = version
        self.spec = StepSpec(self.name, _params(fn, where))
        self.__doc__ = fn.__doc__

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Step {self.name} retries={self.retries} cache={self.cache}>"


def _fn_name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or name == "<lambda>":
        raise InvalidInput(f"step: {fn!r} has no usable name: pass name=")
    return name


def _params(fn: Callable[..., Any], where: str) -> tuple[WiringParam, ...]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{where}: cannot read the function's signature: {exc}") from None
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return tuple(
        WiringParam(
            p.name,
            p.default is not inspect.Parameter.empty,
            p.kind is inspect.Parameter.POSITIONAL_ONLY,
        )
        for p in signature.parameters.values()
        if p.kind not in kinds
    )


def defaults_of(step: Step[..., Any]) -> dict[str, Any]:
    """The function's default parameter values."""
    return {
        p.name: p.default
        for p in inspect.signature(step.fn).parameters.values()
        if p.default is not inspect.Parameter.empty
    }


@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...


@overload
def step(
    *,
    cache: bool = True,
    retries: int = 0,
    backoff_s: float = 1.0,
    resources: Resources | Mapping[str, Any] | None = None,
    version: str = "1",
    name: str | None = None,
) -> Callable[[Callable[P, R]], Step[P, R]]: ...


def step(
    fn: Callable[P, R] | None = None,
    /,
    *,
    cache: bool = True,
    retries: int = 0,
    backoff_s: float = 1.0,
    resources: Resources | Mapping[str, Any] | None = None,
    version: str = "1",
    name: str | None = None,
) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
    """Make a function a pipeline step: ``@my.step`` or ``@my.step(retries=2, ...)``.

    Args:
        fn: the function (when used bare).
        cache: reuse the output of an earlier run with the same cache key (code,
            inputs, params, version).
        retries: how many times a failed attempt is run again (type errors never are).
        backoff_s: the delay before the first retry; it doubles each retry, up to 60 s.
        resources: what one attempt needs, e.g. ``{"cpu": 1, "gpu": 0, "memory_mb": 512}``.
        version: bump it to invalidate cached outputs without changing the code.
        name: the step name (default: the function's name).

    Returns:
        A :class:`Step`, or a decorator that makes one.

    Raises:
        InvalidInput: an invalid option; the message names it.
    """
    options: dict[str, Any] = {
        "cache": cache,
        "retries": retries,
        "backoff_s": backoff_s,
        "resources": resources,
        "version": version,
        "name": name,
    }
    if fn is not None:
        return Step(fn, **options)

    def decorate(function: Callable[P, R]) -> Step[P, R]:
        return Step(function, **options)

    return decorate
