"""Wiring steps into a DAG and deciding what may run next: pure functions, no I/O.

A step's parameter is wired, in this order of precedence, to

1. the output of an earlier step of the same name;
2. a pipeline param (``pipeline.run(params={...})``) of the same name;
3. its default value;
4. for the FIRST parameter only: the previous step's output, in list order.

Anything else is unresolved. A parameter naming the step itself or a later step would
make a cycle. Every error is an :class:`InvalidInput` naming the step and parameter,
raised before anything is written.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.core.errors import InvalidInput


class StepState(enum.StrEnum):
    """Where a step stands. PENDING and RUNNING are transient; the others are final."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    CACHED = "CACHED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"

    @property
    def is_final(self) -> bool:
        return self not in (StepState.PENDING, StepState.RUNNING)

    @property
    def has_output(self) -> bool:
        return self in (StepState.SUCCEEDED, StepState.CACHED)


class Source(enum.StrEnum):
    """Where a parameter's value comes from."""

    STEP = "step"  # an upstream step's output
    PARAM = "param"  # a pipeline param
    DEFAULT = "default"  # the function's default


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a step function, as wiring sees it."""

    name: str
    has_default: bool
    positional_only: bool = False


@dataclass(frozen=True)
class StepSpec:
    """A step's name and its parameters (``*args`` and ``**kwargs`` excluded)."""

    name: str
    params: tuple[ParamSpec, ...]


@dataclass(frozen=True)
class Binding:
    """Parameter ``param`` gets ``key`` from ``source`` (a step name or a param name)."""

    param: str
    source: Source
    key: str
    positional_only: bool = False


Graph = Mapping[str, Sequence[str]]


def wire(
    specs: Sequence[StepSpec], params: Mapping[str, Any] | None
) -> dict[str, tuple[Binding, ...]]:
    """Bind every parameter of every step.

    Args:
        specs: the steps in list order.
        params: the pipeline params given to ``run``; None when not known yet (at
            construction): then a parameter nothing else resolves is taken to be a
            pipeline param, and no param is unknown.

    Returns:
        Step name → its bindings, in parameter order.

    Raises:
        InvalidInput: an empty pipeline, a duplicate step name, a reference to the step
            itself or a later step, an unresolved parameter, or a pipeline param that no
            step has.
    """
    if not specs:
        raise InvalidInput("steps: a pipeline needs at least one step")
    position: dict[str, int] = {}
    for index, spec in enumerate(specs):
        if spec.name in position:
            raise InvalidInput(
                f"steps: duplicate step name {spec.name!r} "
                f"(steps {position[spec.name]} and {index})"
            )
        position[spec.name] = index
    wiring = {
        spec.name: _bind(spec, index, specs, position, params) for index, spec in enumerate(specs)
    }
    if params is None:
        return wiring
    used = {b.key for bindings in wiring.values() for b in bindings if b.source is Source.PARAM}
    unknown = sorted(set(params) - used)
    if unknown:
        raise InvalidInput(f"params: no step has a parameter named {unknown[0]!r}")
    return wiring


def _bind(
    spec: StepSpec,
    index: int,
    specs: Sequence[StepSpec],
    position: Mapping[str, int],
    params: Mapping[str, Any] | None,
) -> tuple[Binding, ...]:
    out: list[Binding] = []
    for i, p in enumerate(spec.params):
        where = f"step {spec.name!r} parameter {p.name!r}"
        if p.name in position:
            if position[p.name] >= index:
                what = "itself" if p.name == spec.name else f"the later step {p.name!r}"
                raise InvalidInput(f"{where} refers to {what}: that would be a cycle")
            out.append(Binding(p.name, Source.STEP, p.name, p.positional_only))
        elif params is not None and p.name in params:
            out.append(Binding(p.name, Source.PARAM, p.name, p.positional_only))
        elif p.has_default:
            out.append(Binding(p.name, Source.DEFAULT, p.name, p.positional_only))
        elif i == 0 and index > 0:
            out.append(Binding(p.name, Source.STEP, specs[index - 1].name, p.positional_only))
        elif params is None:
            out.append(Binding(p.name, Source.PARAM, p.name, p.positional_only))
        else:
            raise InvalidInput(
                f"{where} is unresolved: no earlier step, pipeline param or default has that name"
            )
    return tuple(out)


def graph_of(wiring: Mapping[str, Sequence[Binding]]) -> dict[str, list[str]]:
    """Step → its upstream steps (each once, in parameter order)."""
    return {
        name: list(dict.fromkeys(b.key for b in bindings if b.source is Source.STEP))
        for name, bindings in wiring.items()
    }


def ready_steps(graph: Graph, states: Mapping[str, StepState]) -> list[str]:
    """PENDING steps whose upstreams all have an output (SUCCEEDED or CACHED), in order."""
    return [
        name
        for name, upstreams in graph.items()
        if states[name] is StepState.PENDING and all(states[u].has_output for u in upstreams)
    ]


def descendants(graph: Graph, name: str) -> list[str]:
    """Every step that depends on ``name``, directly or transitively, in graph order."""
    found = {name}
    changed = True
    while changed:
        changed = False
        for step, upstreams in graph.items():
            if step not in found and any(u in found for u in upstreams):
                found.add(step)
                changed = True
    return [step for step in graph if step in found and step != name]


def upstream_closure(graph: Graph, names: Iterable[str]) -> set[str]:
    """``names`` and everything they depend on, transitively."""
    todo, seen = list(names), set[str]()
    while todo:
        step = todo.pop()
        if step not in seen:
            seen.add(step)
            todo.extend(graph[step])
    return seen
