"""``my.Pipeline``: steps in list order, wired by parameter names into a DAG."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import InvalidInput
from modelyard.pipelines._graph import Binding, graph_of, wire
from modelyard.pipelines._step import Step, validate_name

if TYPE_CHECKING:
    from modelyard.executors import Executor
    from modelyard.pipelines._result import PipelineRun

DEFAULT_EXPERIMENT = "pipelines"


class Pipeline:
    """A DAG of steps.

    A step parameter named like an earlier step receives that step's output; the first
    parameter of a step, when it names no step, has no default and is no pipeline
    param, receives the previous step's output; other parameters come from
    ``run(params=...)`` or their defaults.

    Args:
        steps: :class:`Step` objects (plain functions are made steps with the defaults).
        name: the pipeline's name (default ``"pipeline"``).

    Raises:
        InvalidInput: no steps, something that is not a function, a duplicate step
            name, or a parameter referring to the step itself or a later one (a cycle).
    """

    def __init__(
        self, steps: Sequence[Step[..., Any] | Callable[..., Any]], name: str | None = None
    ) -> None:
        if isinstance(steps, str | bytes) or not isinstance(steps, Sequence):
            raise InvalidInput(f"steps must be a list of steps, got {type(steps).__name__}")
        made: list[Step[..., Any]] = []
        for index, item in enumerate(steps):
            if isinstance(item, Step):
                made.append(item)
            elif callable(item):
                made.append(Step(item))
            else:
                raise InvalidInput(f"steps[{index}]: {item!r} is not a step or a function")
        self.steps: tuple[Step[..., Any], ...] = tuple(made)
        self.name = validate_name("pipeline", name if name is not None else "pipeline")
        self._wiring = wire([s.spec for s in self.steps], None)

    def wiring(self, params: Mapping[str, Any] | None = None) -> dict[str, tuple[Binding, ...]]:
        """Each step's parameter bindings for ``params`` (strict: everything resolved).

        Raises:
            InvalidInput: an unresolved parameter or a param no step has.
        """
        if params is None:
            params = {}
        return wire([s.spec for s in self.steps], params)

    @property
    def graph(self) -> dict[str, list[str]]:
        """``{step: [upstream steps]}``, as wired when no pipeline params are given."""
        return graph_of(self._wiring)

    def step(self, name: str) -> Step[..., Any]:
        """The step called ``name``."""
        for item in self.steps:
            if item.name == name:
                return item
        raise InvalidInput(f"pipeline {self.name} has no step {name!r}")

    def run(
        self,
        executor: str | Executor = "local",
        params: Mapping[str, Any] | None = None,
        resume: str | None = None,
        experiment: str = DEFAULT_EXPERIMENT,
        workers: int | None = None,
        *,
        tags: Mapping[str, str] | None = None,
    ) -> PipelineRun:
        """Run the pipeline: a parent run, a child run per step, ready steps concurrently.

        Args:
            executor: ``local``, ``ray``, ``ray://host:port`` or an ``Executor`` (which
                the caller keeps owning).
            params: values for step parameters no step output feeds.
            resume: a pipeline run id to continue: its SUCCEEDED and CACHED steps are
                reused, the others run again (as new child runs of the same parent).
            experiment: where the runs go (a resumed run stays in its own experiment).
            workers: how many workers a ``local`` executor starts.
            tags: extra tags on the pipeline run (the CLI records its target here).

        Returns:
            The :class:`PipelineRun`; a failed pipeline does not raise (see
            ``raise_for_state``).

        Raises:
            InvalidInput: bad wiring, params, options, or a ``resume`` run that is not
                a run of this pipeline; nothing is written then.
            ExecutorUnavailable: the executor cannot be reached.
        """
        from modelyard.pipelines._launch import launch

        return launch(
            self,
            executor=executor,
            params=params,
            resume=resume,
            experiment=experiment,
            workers=workers,
            tags=tags,
        )

    def __repr__(self) -> str:
        return f"<Pipeline {self.name} steps={[s.name for s in self.steps]}>"
