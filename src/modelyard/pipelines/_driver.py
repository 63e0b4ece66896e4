"""The driver loop: run ready steps on the executor, cache, retry, skip, record.

Single-threaded: it waits on the attempts' futures (or on the next retry's due time)
and writes every state change to the step's child run as it happens, so a reader
(``modelyard pipeline show``) sees the pipeline progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from modelyard.core.tracking import LogBatch, RunStatus
from modelyard.executors import Executor, WorkerLost
from modelyard.pipelines import tags as t
from modelyard.pipelines._cache import cache_key, canonical_json
from modelyard.pipelines._graph import Binding, Source, StepState, descendants, ready_steps
from modelyard.pipelines._outputs import StepOutput
from modelyard.pipelines._result import StepResult
from modelyard.pipelines._retry import backoff_delay_s, should_retry
from modelyard.pipelines._step import Step
from modelyard.pipelines._worker import AttemptResult, Input, StepTask, last_line, run_attempt

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient

log = logging.getLogger(__name__)

FINAL_STATUS = {
    StepState.SUCCEEDED: RunStatus.FINISHED,
    StepState.CACHED: RunStatus.FINISHED,
    StepState.FAILED: RunStatus.FAILED,
    StepState.SKIPPED: RunStatus.KILLED,
}


@dataclass
class Plan:
    """What the driver runs: the steps, their wiring and everything resolved beforehand."""

    steps: dict[str, Step[..., Any]]
    wiring: dict[str, tuple[Binding, ...]]
    graph: dict[str, list[str]]
    values: dict[str, dict[str, Any]]  # step → param → value (pipeline params, defaults)
    value_digests: dict[str, dict[str, str]]  # step → param → digest (dataset refs)
    code: dict[str, str]  # step → code digest
    return_types: dict[str, Any]
    experiment_id: int
    parent_run_id: str
    round: int


@dataclass
class Live:
    """The driver's view of one step while the pipeline runs."""

    name: str
    state: StepState = StepState.PENDING
    run_id: str | None = None
    attempts: int = 0
    duration_s: float = 0.0
    output: StepOutput | None = None
    error: str | None = None
    reason: str | None = None
    cache_key: str | None = None
    cached_from: str | None = None
    node: str | None = None
    task: StepTask | None = None
    future: Future[AttemptResult] | None = None
    submitted_at: float = 0.0
    due_at: float | None = None
    reused: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def result(self) -> StepResult:
        return StepResult(
            self.name,
            self.state,
            self.run_id,
            self.attempts,
            round(self.duration_s, 3),
            self.error,
            self.reason,
            self.output,
            self.cached_from,
            self.cache_key,
            self.node,
        )


def _run_id(live: Live) -> str:
    if live.run_id is None:
        raise RuntimeError(f"step {live.name!r} has no run yet")
    return live.run_id


def _param_text(value: Any) -> str:
    """A param value as logged on the step run (params are short strings)."""
    text = value if isinstance(value, str) else canonical_json(value)
    return text if len(text) <= 500 else text[:499] + "…"


class Driver:
    """Runs a :class:`Plan` to completion; ``clock``/``sleep`` are injectable."""

    def __init__(
        self,
        plan: Plan,
        client: ModelyardClient,
        executor: Executor,
        reused: Mapping[str, StepResult],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.plan = plan
        self.client = client
        self.executor = executor
        self.clock = clock
        self.sleep = sleep
        self.live: dict[str, Live] = {}
        for name in plan.graph:
            old = reused.get(name)
            if old is not None:
                self.live[name] = Live(
                    name,
                    state=old.state,
                    run_id=old.run_id,
                    attempts=old.attempts,
                    duration_s=old.duration_s,
                    output=old.output,
                    cache_key=old.cache_key,
                    cached_from=old.cached_from,
                    node=old.node,
                    reused=True,
                )
            else:
                self.live[name] = Live(name)

    # --- records ------------------------------------------------------------------------

    def _tag(
        self, live: Live, tags: Mapping[str, str], params: Mapping[str, str] | None = None
    ) -> None:
        batch = LogBatch(params=tuple((params or {}).items()), tags=tuple(tags.items()))
        self.client.log_batch(_run_id(live), batch)

    def create_step_runs(self) -> None:
        """One PENDING child run for every step not reused from an earlier round."""
        for live in self.live.values():
            if live.reused:
                continue
            run = self.client.create_run(
                self.plan.experiment_id,
                name=live.name,
                tags={
                    t.STEP: live.name,
                    t.STEP_STATE: StepState.PENDING.value,
                    t.STEP_ROUND: str(self.plan.round),
                },
                parent_run_id=self.plan.parent_run_id,
            )
            live.run_id = run.id

    def _finish(self, live: Live, state: StepState, **tags: str) -> None:
        live.state = state
        record = {
            t.STEP_STATE: state.value,
            t.STEP_ATTEMPTS: str(live.attempts),
            t.STEP_DURATION: f"{live.duration_s:.3f}",
        }
        if live.output is not None:
            record[t.STEP_OUTPUT] = live.output.to_json()
        record.update({k: t.clip(v) for k, v in tags.items()})
        self._tag(live, record)
        self.client.update_run(_run_id(live), status=FINAL_STATUS[state])

    # --- the loop -----------------------------------------------------------------------

    def states(self) -> dict[str, StepState]:
        return {name: live.state for name, live in self.live.items()}

    def run(self) -> dict[str, StepResult]:
        """Run until every step is final; returns each step's result."""
        try:
            self._loop()
        except BaseException as exc:
            self._abandon(f"driver interrupted: {last_line(exc)}")
            raise
        return {name: live.result() for name, live in self.live.items()}

    def _loop(self) -> None:
        while True:
            while ready := ready_steps(self.plan.graph, self.states()):
                for name in ready:
                    self._start(self.live[name])
            now = self.clock()
            for live in self.live.values():
                if live.due_at is not None and live.due_at <= now:
                    live.due_at = None
                    self._submit(live)
            if all(live.state.is_final for live in self.live.values()):
                return
            in_flight = {live.future: live for live in self.live.values() if live.future}
            due = [live.due_at for live in self.live.values() if live.due_at is not None]
            timeout = max(0.0, min(due) - self.clock()) if due else None
            if not in_flight:
                if timeout is None:  # nothing runs and nothing will: a wiring bug
                    raise RuntimeError(f"pipeline stalled with states {self.states()}")
                self.sleep(timeout)
                continue
            done, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                self._collect(in_flight[future])

    def _inputs(self, name: str) -> tuple[tuple[Input, ...], dict[str, str], dict[str, Any]]:
        """Arguments, input digests and param values of a step whose upstreams are done."""
        inputs: list[Input] = []
        digests: dict[str, str] = dict(self.plan.value_digests.get(name, {}))
        values = self.plan.values.get(name, {})
        for b in self.plan.wiring[name]:
            if b.source is Source.STEP:
                output = self.live[b.key].output
                if output is None:  # ready_steps only returns steps whose upstreams have one
                    raise RuntimeError(f"step {b.key!r} finished without an output")
                inputs.append(Input(b.param, b.positional_only, output=output))
                digests[b.param] = f"{output.kind}:{output.digest}"
            else:
                inputs.append(Input(b.param, b.positional_only, value=values[b.param]))
        params = {k: v for k, v in values.items() if k not in digests}
        return tuple(inputs), digests, params

    def _start(self, live: Live) -> None:
        step = self.plan.steps[live.name]
        inputs, digests, params = self._inputs(live.name)
        code = self.plan.code[live.name]
        live.cache_key = cache_key(live.name, step.version, code, digests, params)
        if step.cache and self._reuse_cached(live):
            return
        live.state = StepState.RUNNING
        shown = {k: _param_text(v) for k, v in params.items()}
        running = {t.STEP_STATE: StepState.RUNNING.value, t.STEP_CACHE_KEY: live.cache_key}
        self._tag(live, running, shown)
        return_type = self.plan.return_types[live.name]
        live.task = StepTask(live.name, step.fn, _run_id(live), 0, inputs, return_type)
        self._submit(live)

    def _reuse_cached(self, live: Live) -> bool:
        query = (
            f"tags.`{t.STEP_CACHE_KEY}` = '{live.cache_key}' and "
            f"tags.`{t.STEP_STATE}` IN ('{StepState.SUCCEEDED}', '{StepState.CACHED}')"
        )
        page = self.client.search_runs(
            [self.plan.experiment_id],
            filter_string=query,
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not page.items:
            return False
        origin = page.items[0]
        try:
            live.output = StepOutput.from_json(origin.tags[t.STEP_OUTPUT])
        except (KeyError, ValueError):
            return False
        live.cached_from = origin.tags.get(t.STEP_CACHED_FROM) or origin.id
        tags = {t.STEP_CACHED_FROM: live.cached_from, t.STEP_CACHE_KEY: str(live.cache_key)}
        self._finish(live, StepState.CACHED, **tags)
        return True

    def _submit(self, live: Live) -> None:
        if live.task is None:
            raise RuntimeError(f"step {live.name!r} submitted before it was prepared")
        live.attempts += 1
        live.task = replace(live.task, attempt=live.attempts)
        live.submitted_at = self.clock()
        resources = self.plan.steps[live.name].resources
        try:
            live.future = self.executor.submit(run_attempt, live.task, resources=resources)
        except Exception as exc:  # e.g. the function cannot be pickled
            self._failed_attempt(live, f"could not submit: {last_line(exc)}", False, 0.0)

    def _collect(self, live: Live) -> None:
        future, live.future = live.future, None
        if future is None:
            return
        elapsed = self.clock() - live.submitted_at
        try:
            result = future.result()
        except WorkerLost as exc:
            self._failed_attempt(live, f"worker lost: {exc}", True, elapsed)
            return
        except Exception as exc:  # the executor's own failure: infrastructure, retry
            self._failed_attempt(live, f"executor error: {last_line(exc)}", True, elapsed)
            return
        live.node = result.node
        if result.ok:
            live.duration_s += result.duration_s
            live.output, live.error = result.output, None
            self._finish(live, StepState.SUCCEEDED, **{t.STEP_NODE: result.node})
            return
        self._failed_attempt(live, result.error or "failed", result.retryable, result.duration_s)

    def _failed_attempt(self, live: Live, error: str, retryable: bool, duration_s: float) -> None:
        live.duration_s += duration_s
        live.error = error
        step = self.plan.steps[live.name]
        if should_retry(live.attempts, step.retries, retryable):
            live.due_at = self.clock() + backoff_delay_s(step.backoff_s, live.attempts)
            self._tag(live, {t.STEP_ATTEMPTS: str(live.attempts)})
            log.info("step %s attempt %d failed, retrying: %s", live.name, live.attempts, error)
            return
        tags = {t.STEP_ERROR: error}
        if live.node:
            tags[t.STEP_NODE] = live.node
        self._finish(live, StepState.FAILED, **tags)
        for name in descendants(self.plan.graph, live.name):
            down = self.live[name]
            if down.state is StepState.PENDING:
                down.reason = f"upstream {live.name} failed"
                self._finish(down, StepState.SKIPPED, **{t.STEP_REASON: down.reason})

    def _abandon(self, reason: str) -> None:
        """The driver is going away: record every unfinished step as such (best effort)."""
        for live in self.live.values():
            if live.state.is_final or live.run_id is None:
                continue
            try:
                if live.state is StepState.RUNNING:
                    live.error = reason
                    self._tag(live, {t.STEP_STATE: StepState.FAILED.value, t.STEP_ERROR: reason})
                    self.client.update_run(live.run_id, status=RunStatus.KILLED)
                    live.state = StepState.FAILED
                else:
                    live.reason = reason
                    self._finish(live, StepState.SKIPPED, **{t.STEP_REASON: reason})
            except Exception as exc:  # the server may be what failed; the run stays RUNNING
                log.warning("could not record step %s as abandoned: %s", live.name, exc)
