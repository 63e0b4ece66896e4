"""How studies and trials are stored as runs: the tag layout, both ways.

A study is a parent run tagged ``modelyard.study``; each trial is a child run tagged
``modelyard.trial``. The ``modelyard tune`` commands read the same tags.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping

from modelyard.core.tracking import LogBatch, Metric, Run, RunStatus
from modelyard.tuning._result import Trial, TrialState
from modelyard.tuning._space import Scalar

STUDY = "modelyard.study"
STUDY_METRIC = "modelyard.study.metric"
STUDY_MODE = "modelyard.study.mode"
STUDY_SAMPLER = "modelyard.study.sampler"
STUDY_PRUNER = "modelyard.study.pruner"
STUDY_EXECUTOR = "modelyard.study.executor"
STUDY_N_TRIALS = "modelyard.study.n_trials"
STUDY_SPACE = "modelyard.study.space"
STUDY_STATE = "modelyard.study.state"
STUDY_STOP_REASON = "modelyard.study.stop_reason"
STUDY_BEST_TRIAL = "modelyard.study.best_trial"
STUDY_BEST_RUN = "modelyard.study.best_run"
BEST_PARAM_PREFIX = "best."

TRIAL = "modelyard.trial"
TRIAL_STATE = "modelyard.trial.state"
TRIAL_PARAMS = "modelyard.trial.params"
TRIAL_VALUE = "modelyard.trial.value"
TRIAL_NODE = "modelyard.trial.node"
TRIAL_ERROR = "modelyard.trial.error"

PARENT_RUN = "mlflow.parentRunId"
MAX_ERROR_CHARS = 2000


def trial_tags(number: int, params: Mapping[str, Scalar]) -> dict[str, str]:
    """The tags a trial's child run is created with."""
    return {TRIAL: str(number), TRIAL_PARAMS: json.dumps(dict(params))}


def param_text(value: Scalar) -> str:
    """A parameter as logged: the value's text (``0.01``, ``rbf``, ``True``)."""
    return str(value)


def outcome_tags(
    state: TrialState, value: float | None, node: str | None, error: str | None
) -> dict[str, str]:
    """The tags that make a trial finished (written by the worker, or by the driver when
    the worker could not)."""
    tags = {TRIAL_STATE: state.value}
    if value is not None:
        tags[TRIAL_VALUE] = repr(float(value))
    if node:
        tags[TRIAL_NODE] = node
    if error:
        tags[TRIAL_ERROR] = error[:MAX_ERROR_CHARS]
    return tags


def best_tags(trial: Trial) -> dict[str, str]:
    """The parent run's tags naming its best trial and that trial's parameters."""
    tags = {STUDY_BEST_TRIAL: str(trial.number), STUDY_BEST_RUN: trial.run_id}
    tags.update({BEST_PARAM_PREFIX + k: param_text(v) for k, v in trial.params.items()})
    return tags


def best_batch(metric: str, trial: Trial, step: int) -> LogBatch:
    """The parent run's write for a new best: its tags, and ``metric`` = the best value at
    ``step`` (finished trials so far), so the parent's metric history is the best-so-far."""
    value = trial.value if trial.value is not None else math.nan
    point = Metric(metric, value, step, time.time_ns() // 1_000_000)
    return LogBatch(metrics=(point,), tags=tuple(best_tags(trial).items()))


def trial_number(run: Run) -> int | None:
    """The ``modelyard.trial`` number of a child run, or None for another kind of run."""
    text = run.tags.get(TRIAL)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def trial_params(run: Run) -> dict[str, Scalar] | None:
    """The exact parameters a trial ran with, or None if the tag is unreadable."""
    try:
        params = json.loads(run.tags.get(TRIAL_PARAMS, ""))
    except ValueError:
        return None
    return params if isinstance(params, dict) else None


def intermediate_of(history: list[Metric], state: TrialState) -> dict[int, float]:
    """Intermediate values from a metric history: a COMPLETE trial's last point is its
    final value, not an intermediate one."""
    points = history[:-1] if state is TrialState.COMPLETE else history
    out: dict[int, float] = {}
    for point in points:
        out.setdefault(point.step, point.value)  # a step reported twice keeps the first
    return out


def trial_from_run(
    run: Run, metric: str, history: Callable[[str, str], list[Metric]]
) -> Trial | None:
    """A finished trial read back from its child run; None if it never finished.

    The outcome tags make a trial finished, whatever the run's status: a worker that died
    between writing them and ending its run still finished the trial.

    Args:
        run: The child run.
        metric: The study metric (its history gives the intermediate values).
        history: ``client.metric_history``.
    """
    number, params = trial_number(run), trial_params(run)
    try:
        state = TrialState(run.tags.get(TRIAL_STATE, ""))
    except ValueError:
        return None
    if number is None or params is None:
        return None
    value: float | None = None
    if TRIAL_VALUE in run.tags:
        try:
            value = float(run.tags[TRIAL_VALUE])
        except ValueError:
            value = None
    if state is TrialState.COMPLETE and value is None:
        return None
    points = history(run.id, metric) if state is not TrialState.FAIL else []
    duration = (run.end_time_ms - run.start_time_ms) / 1000 if run.end_time_ms is not None else None
    return Trial(
        number=number,
        run_id=run.id,
        state=state,
        params=params,
        value=value,
        intermediate=intermediate_of(points, state),
        error=run.tags.get(TRIAL_ERROR),
        node=run.tags.get(TRIAL_NODE),
        duration_s=duration,
    )


def run_status(state: TrialState) -> RunStatus:
    """The status of a finished trial's run: FAILED for FAIL, else FINISHED."""
    return RunStatus.FAILED if state is TrialState.FAIL else RunStatus.FINISHED


def is_unfinished(run: Run) -> bool:
    """A trial run its driver started that neither finished nor was marked KILLED."""
    return run.status is RunStatus.RUNNING and TRIAL_STATE not in run.tags
