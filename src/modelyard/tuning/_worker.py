"""One trial, run in a worker (a local process or a Ray task): ``run_trial`` and ``report``.

The worker reopens the child run its driver created, calls the objective with the
trial's parameters, and ends the run itself after writing the outcome tags, so a
finished trial is stored even if the driver or the node dies a moment later.
"""

from __future__ import annotations

import math
import numbers
import time
import traceback
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import optuna

from modelyard.core.errors import InvalidInput, ModelyardError
from modelyard.core.tracking import LogBatch, Metric, Run
from modelyard.executors import current_node
from modelyard.tracking import fluent
from modelyard.tracking.validation import validate_key
from modelyard.tuning._pruning import PruneJudge, SnapshotTrial
from modelyard.tuning._records import outcome_tags, run_status
from modelyard.tuning._result import TrialPruned, TrialState
from modelyard.tuning._samplers import PrunerSpec
from modelyard.tuning._space import Distribution, Scalar

FLUSH_TIMEOUT_S = 120.0
Objective = Callable[[dict[str, Scalar]], object]


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs for one trial (small and picklable)."""

    run: Run  # the RUNNING child run the driver created for it
    number: int
    params: Mapping[str, Scalar]
    metric: str
    mode: str
    pruner: PrunerSpec
    space: Mapping[str, Distribution]
    snapshot: tuple[SnapshotTrial, ...] = ()

    @property
    def run_id(self) -> str:
        return self.run.id


@dataclass(frozen=True)
class TrialOutcome:
    """What a worker hands back to the driver."""

    state: TrialState
    value: float | None
    intermediate: dict[int, float] = field(default_factory=dict)
    error: str | None = None
    duration_s: float = 0.0
    node: str = ""
    pruner_attrs: dict[str, Any] = field(default_factory=dict)


class _Context:
    """The trial this worker is running, for ``report``."""

    def __init__(self, spec: TrialSpec, active: fluent.ActiveRun) -> None:
        self.spec = spec
        self.active = active
        self.intermediate: dict[int, float] = {}
        self.extras: dict[str, float] = {}  # other numbers of a returned dict
        self.value_logged = False  # the objective logged its value itself
        self.judge: PruneJudge | None = None

    def prune_now(self, step: int, value: float) -> bool:
        if self.spec.pruner == "none":
            return False
        if self.judge is None:
            spec = self.spec
            self.judge = PruneJudge(spec.pruner, spec.mode, spec.space, spec.params, spec.snapshot)
        return self.judge.report(step, value)


_current: ContextVar[_Context | None] = ContextVar("modelyard_trial", default=None)


def report(step: int, value: float, *, metric: str = "objective") -> None:
    """Log an intermediate value; inside a trial, raise ``TrialPruned`` if it should stop.

    Inside a trial the value is logged as the study's metric at ``step`` and the study's
    pruner decides. Outside a trial it is only logged, as ``metric``, to the active run.

    Raises:
        TrialPruned: the pruner stopped this trial (let it propagate).
        InvalidInput: ``step`` is not an integer >= 0 or ``value`` is not a number.
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise InvalidInput(f"report: step must be an integer >= 0, got {step!r}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(f"report: value must be a number, got {value!r}")
    step, number = int(step), float(value)
    ctx = _current.get()
    if ctx is None:
        fluent.log_metric(metric, number, step=step)
        return
    ctx.active.logger.log_metric(ctx.spec.metric, number, step, time.time_ns() // 1_000_000)
    ctx.intermediate.setdefault(step, number)
    if ctx.prune_now(step, number):
        raise TrialPruned(f"trial {ctx.spec.number} pruned at step {step}")


def error_line(exc: BaseException) -> str:
    """The last line of the exception's traceback: ``ValueError: bad input``."""
    return traceback.format_exception_only(exc)[-1].strip()


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def _value_of(result: object, ctx: _Context) -> tuple[float | None, str | None]:
    """The trial's value from what the objective returned, or an error."""
    metric = ctx.spec.metric
    expected = (
        f"return a float, a dict with {metric!r}, or None after my.log_metric({metric!r}, value)"
    )
    if result is None:  # the objective logged it (stored: _call flushed)
        logged = fluent._get().client.get_run(ctx.spec.run_id).metrics.get(metric)
        if logged is None:
            return None, f"the objective returned None and logged no {metric!r}: {expected}"
        value: float | None = logged.value
        ctx.value_logged = True
    elif isinstance(result, Mapping):
        if metric not in result:
            return None, f"the objective returned a dict without {metric!r}: {expected}"
        value = _number(result[metric])
        if value is None:
            return None, f"the objective returned {metric}={result[metric]!r}, not a number"
        extras = {str(k): _number(v) for k, v in result.items() if k != metric}
        for key, number in extras.items():
            if number is not None:
                try:
                    validate_key("metric", key)
                except InvalidInput as exc:
                    return None, f"the objective returned a bad metric name: {exc}"
        ctx.extras = {k: v for k, v in extras.items() if v is not None}
    else:
        value = _number(result)
        if value is None:
            return None, f"the objective returned {type(result).__name__}: {expected}"
    if value is not None and math.isnan(value):
        return None, f"the objective's {metric!r} is NaN"
    return value, None


def _call(fn: Objective, ctx: _Context) -> tuple[TrialState, float | None, str | None]:
    ended: tuple[TrialState, float | None, str | None] | None = None
    try:
        result = fn(dict(ctx.spec.params))
    except optuna.exceptions.TrialPruned:  # my.TrialPruned, or Optuna's own
        last = max(ctx.intermediate) if ctx.intermediate else None
        ended = TrialState.PRUNED, None if last is None else ctx.intermediate[last], None
    except Exception as exc:  # any failure of the objective fails the trial
        ended = TrialState.FAIL, None, error_line(exc)
    try:
        # Store what the objective logged now: a rejected batch must not take the
        # outcome tags down with it, and a completed trial with rejected logs failed.
        ctx.active.logger.flush(FLUSH_TIMEOUT_S)
    except ModelyardError as exc:
        if ended is None:
            return TrialState.FAIL, None, error_line(exc)
    if ended is not None:
        return ended
    try:
        value, error = _value_of(result, ctx)
    except ModelyardError as exc:
        return TrialState.FAIL, None, error_line(exc)
    if error is not None:
        return TrialState.FAIL, None, error
    return TrialState.COMPLETE, value, None


def run_trial(fn: Objective, spec: TrialSpec) -> TrialOutcome:
    """Run one trial in this process and end its run (module level: picklable).

    Args:
        fn: The objective; it takes one dict of parameters.
        spec: The trial's run, parameters and pruning snapshot.

    Returns:
        The outcome; a failing objective is a FAIL outcome, not an exception.
    """
    session = fluent._get()
    active = session.start_run(None, None, nested=True, opened=spec.run)
    ctx = _Context(spec, active)
    token = _current.set(ctx)
    started = time.monotonic()
    try:
        state, value, error = _call(fn, ctx)
    finally:
        _current.reset(token)
    duration_s = time.monotonic() - started
    node = current_node()
    now_ms = time.time_ns() // 1_000_000
    metrics: list[Metric] = []
    if state is TrialState.COMPLETE and value is not None and not ctx.value_logged:
        step = max(ctx.intermediate) + 1 if ctx.intermediate else 0
        metrics = [Metric(k, v, step, now_ms) for k, v in ctx.extras.items()]
        metrics.append(Metric(spec.metric, value, step, now_ms))
    tags = tuple(outcome_tags(state, value, node, error).items())
    # The outcome and the run's end in one request and one transaction.
    session.end_run(active, run_status(state), last=LogBatch(metrics=tuple(metrics), tags=tags))
    return TrialOutcome(
        state=state,
        value=value,
        intermediate=dict(ctx.intermediate),
        error=error,
        duration_s=duration_s,
        node=node,
        pruner_attrs=ctx.judge.system_attrs() if ctx.judge is not None else {},
    )
