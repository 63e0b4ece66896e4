"""``Pipeline.run``: validate and resolve everything, then write, then drive.

Everything a user can get wrong (params, options, wiring, the resumed run, the
executor's address, dataset references) is checked before the first write, so a
mistake leaves no half-written pipeline run behind.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import InvalidInput
from modelyard.core.tracking import LogBatch, Run, RunStatus
from modelyard.data import DatasetRef
from modelyard.executors import Executor, open_executor, worker_env
from modelyard.pipelines import tags as t
from modelyard.pipelines._cache import code_digest
from modelyard.pipelines._driver import Driver, Plan
from modelyard.pipelines._graph import Binding, Source, graph_of, upstream_closure
from modelyard.pipelines._result import PipelineRun, StepResult, get_run
from modelyard.pipelines._step import Step, defaults_of
from modelyard.pipelines._typecheck import resolve_return_type
from modelyard.tracking import fluent

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient
    from modelyard.pipelines._pipeline import Pipeline

log = logging.getLogger(__name__)

MAX_GRAPH_CHARS = 8000  # the graph is a tag of the pipeline run: a tag's size limit


def launch(
    pipeline: Pipeline,
    *,
    executor: str | Executor,
    params: Mapping[str, Any] | None,
    resume: str | None,
    experiment: str,
    workers: int | None,
    tags: Mapping[str, str] | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PipelineRun:
    """Validate, open the executor, write the parent and step runs, drive, record."""
    params = _checked_params(params)
    extra = _checked_tags(tags)
    _check_options(experiment, workers, resume)
    wiring = pipeline.wiring(params)
    graph = graph_of(wiring)
    if len(json.dumps(graph)) > MAX_GRAPH_CHARS:
        raise InvalidInput(f"steps: the graph of {len(graph)} steps is too large to record")
    steps = {s.name: s for s in pipeline.steps}
    session = fluent._get()
    client, project = session.client, session.settings.project
    code = {name: _code(step) for name, step in steps.items()}
    return_types = {name: resolve_return_type(step.fn) for name, step in steps.items()}
    values, value_digests = _values(client, project, steps, wiring, params)
    old = _resumable(client, resume, pipeline.name) if resume is not None else None
    opened = open_executor(executor, workers=workers, env=worker_env(session.settings))
    reused: dict[str, StepResult] = {}
    try:
        if old is None:
            experiment_id = session.ensure_experiment(experiment).id
            parent = _create_parent(client, pipeline.name, experiment_id, opened, graph, extra)
            round_ = 1
        else:
            parent, round_ = _reopen_parent(client, old, opened, graph, extra)
            reused = _reusable(old, graph)
        plan = Plan(
            steps=steps,
            wiring=wiring,
            graph=graph,
            values=values,
            value_digests=value_digests,
            code=code,
            return_types=return_types,
            experiment_id=parent.experiment_id,
            parent_run_id=parent.id,
            round=round_,
        )
        return _drive(client, plan, opened, reused, parent, pipeline.name, clock, sleep)
    finally:
        if isinstance(executor, str):
            opened.close()


def _drive(
    client: ModelyardClient,
    plan: Plan,
    executor: Executor,
    reused: Mapping[str, StepResult],
    parent: Run,
    name: str,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> PipelineRun:
    driver = Driver(plan, client, executor, reused, clock=clock, sleep=sleep)
    try:
        driver.create_step_runs()
        results = driver.run()
    except BaseException as exc:
        status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
        error = t.clip(f"driver stopped: {type(exc).__name__}: {exc}")
        try:
            _tag(
                client,
                parent.id,
                {t.PIPELINE_STATE: t.PipelineState.FAILED, t.PIPELINE_ERROR: error},
            )
            client.update_run(parent.id, status=status)
        except Exception as record_error:  # the server may be what failed
            log.warning("could not record pipeline run %s as failed: %s", parent.id, record_error)
        raise
    succeeded = all(r.state.has_output for r in results.values())
    state = t.PipelineState.SUCCEEDED if succeeded else t.PipelineState.FAILED
    _tag(client, parent.id, {t.PIPELINE_STATE: state.value})
    final = client.update_run(
        parent.id, status=RunStatus.FINISHED if succeeded else RunStatus.FAILED
    )
    return PipelineRun(
        run_id=final.id,
        name=final.name,
        pipeline=name,
        state=state,
        steps=results,
        graph=plan.graph,
        experiment_id=final.experiment_id,
        start_time_ms=final.start_time_ms,
        end_time_ms=final.end_time_ms,
        error=None,
        tags={**final.tags, t.PIPELINE_STATE: state.value},
        client=client,
    )


def _tag(client: ModelyardClient, run_id: str, tags: Mapping[str, str]) -> None:
    client.log_batch(run_id, LogBatch(tags=tuple((k, str(v)) for k, v in tags.items())))


def _create_parent(
    client: ModelyardClient,
    name: str,
    experiment_id: int,
    executor: Executor,
    graph: dict[str, list[str]],
    extra: dict[str, str],
) -> Run:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    tags = {
        t.PIPELINE: name,
        t.PIPELINE_STATE: t.PipelineState.RUNNING.value,
        t.PIPELINE_GRAPH: json.dumps(graph),
        t.PIPELINE_EXECUTOR: executor.name,
        t.PIPELINE_ROUNDS: "1",
        **extra,
    }
    return client.create_run(experiment_id, name=f"{name}-{stamp}", tags=tags)


def _reopen_parent(
    client: ModelyardClient,
    old: PipelineRun,
    executor: Executor,
    graph: dict[str, list[str]],
    extra: dict[str, str],
) -> tuple[Run, int]:
    round_ = int(old.tags.get(t.PIPELINE_ROUNDS, "1") or 1) + 1
    parent = client.update_run(old.run_id, status=RunStatus.RUNNING)
    tags = {
        t.PIPELINE_STATE: t.PipelineState.RUNNING.value,
        t.PIPELINE_GRAPH: json.dumps(graph),
        t.PIPELINE_EXECUTOR: executor.name,
        t.PIPELINE_ROUNDS: str(round_),
        t.PIPELINE_ERROR: "",
        **extra,
    }
    _tag(client, parent.id, tags)
    return parent, round_


def _resumable(client: ModelyardClient, run_id: str, name: str) -> PipelineRun:
    old = get_run(run_id, client)
    if old.pipeline != name:
        raise InvalidInput(
            f"resume: run {run_id} is a run of pipeline {old.pipeline!r}, not {name!r}"
        )
    return old


def _reusable(old: PipelineRun, graph: dict[str, list[str]]) -> dict[str, StepResult]:
    """Old steps with an output whose upstreams (in today's graph) all have one too."""
    done = {n for n, r in old.steps.items() if n in graph and r.state.has_output}
    return {
        name: old.steps[name]
        for name in graph
        if name in done and upstream_closure(graph, [name]) <= done
    }


def _values(
    client: ModelyardClient,
    project: str,
    steps: Mapping[str, Step[..., Any]],
    wiring: Mapping[str, tuple[Binding, ...]],
    params: Mapping[str, Any],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
    """Param and default values per step; dataset references pinned to a version."""
    values: dict[str, dict[str, Any]] = {}
    digests: dict[str, dict[str, str]] = {}
    for name, bindings in wiring.items():
        defaults = defaults_of(steps[name])
        values[name], digests[name] = {}, {}
        for b in bindings:
            if b.source is Source.STEP:
                continue
            value = params[b.key] if b.source is Source.PARAM else defaults[b.param]
            if isinstance(value, DatasetRef):
                version = client.get_dataset_version(project, str(value))
                value = DatasetRef(version.dataset, version.version)
                digests[name][b.param] = f"dataset:{version.manifest_digest}"
            values[name][b.param] = value
    return values, digests


def _code(step: Step[..., Any]) -> str:
    try:
        return code_digest(step.fn)
    except TypeError as exc:
        raise InvalidInput(f"step {step.name!r}: {exc}") from None


def _checked_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise InvalidInput(f"params must be a mapping of parameter name to value, got {params!r}")
    return dict(params)


def _checked_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise InvalidInput("tags must map strings to strings")
    return dict(tags)


def _check_options(experiment: object, workers: object, resume: object) -> None:
    if not isinstance(experiment, str) or not experiment.strip():
        raise InvalidInput(f"experiment must be a non-empty name, got {experiment!r}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise InvalidInput(f"workers must be an integer >= 1, got {workers!r}")
    if resume is not None and (not isinstance(resume, str) or not resume):
        raise InvalidInput(f"resume must be a pipeline run id, got {resume!r}")
