"""What a pipeline run did: :class:`PipelineRun`, rebuilt from the stored runs at will."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import InvalidInput, ModelyardError, NotFound
from modelyard.core.tracking import Run
from modelyard.pipelines import tags as t
from modelyard.pipelines._graph import StepState
from modelyard.pipelines._outputs import StepOutput, load_output

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient


class StepFailed(ModelyardError):
    """A pipeline run failed; ``step`` and ``error`` say where and why."""

    def __init__(self, message: str, step: str | None, error: str | None) -> None:
        super().__init__(message)
        self.step = step
        self.error = error


@dataclass(frozen=True)
class StepResult:
    """One step of a pipeline run, as recorded on its child run."""

    name: str
    state: StepState
    run_id: str | None
    attempts: int = 0
    duration_s: float = 0.0
    error: str | None = None
    reason: str | None = None
    output: StepOutput | None = None
    cached_from: str | None = None
    cache_key: str | None = None
    node: str | None = None

    @property
    def cache_hit(self) -> bool:
        return self.state is StepState.CACHED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--json``)."""
        return {
            "name": self.name,
            "state": self.state.value,
            "run_id": self.run_id,
            "attempts": self.attempts,
            "duration_s": self.duration_s,
            "cache_hit": self.cache_hit,
            "error": self.error,
            "reason": self.reason,
            "output": None if self.output is None else json.loads(self.output.to_json()),
            "cached_from": self.cached_from,
            "cache_key": self.cache_key,
            "node": self.node,
        }


@dataclass(frozen=True)
class PipelineRun:
    """A pipeline run: its state and each step's result.

    ``output(name)`` loads a step's output (verified before unpickling);
    ``raise_for_state()`` raises :class:`StepFailed` if the run failed.
    """

    run_id: str
    name: str
    pipeline: str
    state: t.PipelineState
    steps: dict[str, StepResult]
    graph: dict[str, list[str]]
    experiment_id: int
    start_time_ms: int
    end_time_ms: int | None = None
    error: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    client: ModelyardClient | None = field(default=None, repr=False, compare=False)

    @property
    def duration_s(self) -> float | None:
        if self.end_time_ms is None:
            return None
        return (self.end_time_ms - self.start_time_ms) / 1000

    def output(self, name: str) -> Any:
        """The output of step ``name``: a ``DatasetRef`` or the unpickled value.

        Raises:
            NotFound: no such step.
            InvalidInput: the step has no output (it failed or was skipped).
            IntegrityError: the stored artifact is not what the step wrote.
        """
        if name not in self.steps:
            raise NotFound(f"pipeline run {self.run_id} has no step {name!r}")
        result = self.steps[name]
        if result.output is None:
            raise InvalidInput(f"step {name!r} has no output: it is {result.state.value}")
        return load_output(self.client or _session_client(), result.output)

    def raise_for_state(self) -> None:
        """Raise :class:`StepFailed` naming the failed step and its error, if any."""
        if self.state is not t.PipelineState.FAILED:
            return
        for result in self.steps.values():
            if result.state is StepState.FAILED:
                raise StepFailed(
                    f"pipeline {self.pipeline} failed: step {result.name!r} failed: {result.error}",
                    result.name,
                    result.error,
                )
        raise StepFailed(f"pipeline {self.pipeline} failed: {self.error}", None, self.error)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--json``)."""
        return {
            "run_id": self.run_id,
            "name": self.name,
            "pipeline": self.pipeline,
            "state": self.state.value,
            "experiment_id": self.experiment_id,
            "start_time_ms": self.start_time_ms,
            "end_time_ms": self.end_time_ms,
            "duration_s": self.duration_s,
            "error": self.error,
            "graph": self.graph,
            "target": self.tags.get(t.PIPELINE_TARGET),
            "schedule": self.tags.get(t.PIPELINE_SCHEDULE),
            "steps": {name: r.to_dict() for name, r in self.steps.items()},
        }


def _session_client() -> ModelyardClient:
    from modelyard.tracking import fluent

    return fluent._get().client


def step_result(run: Run) -> StepResult:
    """A step's result from its child run's tags."""
    tags = run.tags
    try:
        state = StepState(tags.get(t.STEP_STATE, ""))
    except ValueError:
        state = StepState.PENDING
    try:
        output = StepOutput.from_json(tags[t.STEP_OUTPUT]) if t.STEP_OUTPUT in tags else None
    except InvalidInput:
        output = None
    return StepResult(
        name=tags.get(t.STEP, run.name),
        state=state,
        run_id=run.id,
        attempts=_int(tags.get(t.STEP_ATTEMPTS)),
        duration_s=_float(tags.get(t.STEP_DURATION)),
        error=tags.get(t.STEP_ERROR),
        reason=tags.get(t.STEP_REASON),
        output=output,
        cached_from=tags.get(t.STEP_CACHED_FROM),
        cache_key=tags.get(t.STEP_CACHE_KEY),
        node=tags.get(t.STEP_NODE),
    )


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _float(text: str | None) -> float:
    try:
        return float(text or 0.0)
    except ValueError:
        return 0.0


def child_runs(client: ModelyardClient, parent: Run) -> list[Run]:
    """Every child run of ``parent`` (all rounds), oldest first."""
    found: list[Run] = []
    token: str | None = None
    while True:
        page = client.search_runs(
            [parent.experiment_id],
            filter_string=f"tags.`{t.PARENT}` = '{parent.id}'",
            order_by=["attributes.start_time ASC"],
            max_results=1000,
            page_token=token,
        )
        found.extend(page.items)
        token = page.next_page_token
        if not token:
            return found


def get_run(run_id: str, client: ModelyardClient | None = None) -> PipelineRun:
    """Rebuild a :class:`PipelineRun` from the stored parent and step runs.

    Raises:
        NotFound: no such run.
        InvalidInput: the run is not a pipeline run.
    """
    client = client or _session_client()
    parent = client.get_run(run_id)
    return pipeline_run_of(client, parent, child_runs(client, parent))


def pipeline_run_of(client: ModelyardClient, parent: Run, children: list[Run]) -> PipelineRun:
    """A :class:`PipelineRun` from its parent run and child runs (newest round wins)."""
    tags = parent.tags
    if t.PIPELINE not in tags:
        raise InvalidInput(f"run {parent.id} is not a pipeline run (no {t.PIPELINE} tag)")
    try:
        graph = {str(k): [str(u) for u in v] for k, v in json.loads(tags[t.PIPELINE_GRAPH]).items()}
    except (KeyError, ValueError, TypeError, AttributeError):
        graph = {}
    newest: dict[str, tuple[tuple[int, int], Run]] = {}
    for child in children:
        name = child.tags.get(t.STEP)
        if name is None:
            continue
        rank = (_int(child.tags.get(t.STEP_ROUND)), child.start_time_ms)
        if name not in newest or rank >= newest[name][0]:
            newest[name] = (rank, child)
    order = list(graph) + [n for n in newest if n not in graph]
    steps = {
        name: step_result(newest[name][1])
        if name in newest
        else StepResult(name, StepState.PENDING, None)
        for name in order
    }
    try:
        state = t.PipelineState(tags.get(t.PIPELINE_STATE, ""))
    except ValueError:
        state = t.PipelineState.FAILED
    return PipelineRun(
        run_id=parent.id,
        name=parent.name,
        pipeline=tags[t.PIPELINE],
        state=state,
        steps=steps,
        graph=graph,
        experiment_id=parent.experiment_id,
        start_time_ms=parent.start_time_ms,
        end_time_ms=parent.end_time_ms,
        error=tags.get(t.PIPELINE_ERROR) or None,
        tags=dict(tags),
        client=client,
    )
