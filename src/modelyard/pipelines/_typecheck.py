"""Checking a step's return value against its declared return type (shallowly).

The annotation is resolved in the driver, where the module that defines the step is
complete; the worker receives the resolved type. Only what can be checked cheaply and
surely is checked: classes, ``None``, unions, ``Optional``, ``Literal`` and the origin of
generics (``list[int]`` checks ``list``). ``Any``, type variables and anything exotic
pass.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

NO_CHECK: Any = None  # the resolved type when nothing is declared or it cannot be resolved


def resolve_return_type(fn: Callable[..., Any]) -> Any:
    """The evaluated return annotation of ``fn``, or :data:`NO_CHECK`."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an annotation naming something that is not importable here
        return NO_CHECK
    declared = hints.get("return", inspect.Signature.empty)
    if declared is inspect.Signature.empty:
        return NO_CHECK
    return declared


def type_name(tp: Any) -> str:
    """A short readable name: ``DatasetRef``, ``list[int]``, ``int | None``."""
    if tp is type(None) or tp is None:
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return repr(tp).replace("typing.", "")


def matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` is an instance of ``tp``, as far as a shallow check can tell."""
    if tp is NO_CHECK or tp is Any or tp is object:
        return True
    if tp is type(None):
        return value is None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return any(matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin is typing.Annotated:
        return matches(value, args[0])
    if origin is not None:
        return isinstance(origin, type) and isinstance(value, origin)
    if isinstance(tp, type):
        try:
            return isinstance(value, tp)
        except TypeError:  # e.g. a Protocol that is not runtime_checkable
            return True
    return True


def mismatch(step: str, value: Any, tp: Any) -> str | None:
    """The error message when ``value`` does not match ``tp``, else None."""
    if matches(value, tp):
        return None
    return f"{step} returned {type(value).__name__}, declared {type_name(tp)}"
