"""One attempt of one step, run in a worker (a local process or a Ray task).

The worker logs into the step's child run (``my.start_run(run_id=...)``), so whatever
the step logs itself (metrics, datasets) lands there too; it materializes the inputs
(artifacts verified before unpickling, dataset references recorded as lineage inputs),
calls the function, checks the return type and stores the output. It never raises for
a step's own failure: it returns an :class:`AttemptResult` saying what happened.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import IntegrityError, InvalidInput
from modelyard.core.tracking import RunStatus
from modelyard.data import DatasetRef
from modelyard.executors import current_node
from modelyard.pipelines._outputs import StepOutput, load_output, store_output
from modelyard.pipelines._typecheck import mismatch
from modelyard.tracking import fluent

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Input:
    """One argument: a plain ``value``, or an upstream ``output`` to materialize."""

    param: str
    positional_only: bool = False
    value: Any = None
    output: StepOutput | None = None


@dataclass(frozen=True)
class StepTask:
    """Everything a worker needs to run one attempt (cloudpickled to it)."""

    step: str
    fn: Callable[..., Any]
    run_id: str
    attempt: int
    inputs: tuple[Input, ...]
    return_type: Any


@dataclass(frozen=True)
class AttemptResult:
    """What an attempt did. ``retryable`` is False for errors a retry cannot fix."""

    ok: bool
    duration_s: float
    node: str
    output: StepOutput | None = None
    error: str | None = None
    retryable: bool = True


def last_line(exc: BaseException) -> str:
    """``ValueError: boom`` — the last line of the exception's report."""
    return traceback.format_exception_only(exc)[-1].strip()


def run_attempt(task: StepTask) -> AttemptResult:
    """Run one attempt of ``task`` in this process, logging to its step run."""
    started = time.monotonic()
    node = current_node()
    session = fluent._get()
    active = session.start_run(None, None, nested=True, run_id=task.run_id)
    status = RunStatus.FAILED
    try:
        result = _attempt(session, task, node, started)
        if result.ok:
            status = RunStatus.FINISHED
        return result
    finally:
        session.end_run(active, status)


def _attempt(session: fluent._Session, task: StepTask, node: str, started: float) -> AttemptResult:
    def failed(error: str, retryable: bool) -> AttemptResult:
        return AttemptResult(False, time.monotonic() - started, node, None, error, retryable)

    client, project = session.client, session.settings.project
    try:
        args, kwargs = _materialize(client, project, task)
    except IntegrityError as exc:
        return failed(f"input refused: {exc}", retryable=False)
    except Exception as exc:
        return failed(f"inputs could not be loaded: {last_line(exc)}", retryable=True)
    try:
        value = task.fn(*args, **kwargs)
    except (Exception, SystemExit) as exc:
        _save_traceback(client, task, exc)
        return failed(last_line(exc), retryable=True)
    problem = mismatch(task.step, value, task.return_type)
    if problem is not None:
        return failed(problem, retryable=False)
    try:
        output = store_output(client, project, task.step, task.run_id, value)
    except InvalidInput as exc:
        return failed(f"output could not be stored: {exc.message}", retryable=False)
    except Exception as exc:
        return failed(f"output could not be stored: {last_line(exc)}", retryable=True)
    return AttemptResult(True, time.monotonic() - started, node, output)


def _materialize(
    client: ModelyardClient, project: str, task: StepTask
) -> tuple[list[Any], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for item in task.inputs:
        value = load_output(client, item.output) if item.output is not None else item.value
        if isinstance(value, DatasetRef):  # a lineage edge: dataset version → this run
            client.record_dataset_input(project, str(value), task.run_id)
        if item.positional_only:
            args.append(value)
        else:
            kwargs[item.param] = value
    return args, kwargs


def _save_traceback(client: ModelyardClient, task: StepTask, exc: BaseException) -> None:
    """The full traceback as a run artifact, for ``modelyard runs show``."""
    text = "".join(traceback.format_exception(exc)).encode()
    try:
        client.log_run_artifact(task.run_id, f"errors/attempt-{task.attempt}.txt", text)
    except Exception as upload_error:  # the attempt's own error is what matters
        log.warning("could not save the traceback of %s: %s", task.step, upload_error)
