"""One ``my.tune`` call: find or create the study's parent run, drive it, close it."""

from __future__ import annotations

import contextlib

from modelyard.client import ModelyardClient
from modelyard.core.clock import Clock
from modelyard.core.errors import ModelyardError
from modelyard.core.tracking import LogBatch, Run, RunStatus
from modelyard.executors import Executor, open_executor, worker_env
from modelyard.tuning._config import StudyConfig
from modelyard.tuning._records import (
    STUDY,
    STUDY_EXECUTOR,
    STUDY_METRIC,
    STUDY_MODE,
    STUDY_N_TRIALS,
    STUDY_PRUNER,
    STUDY_SAMPLER,
    STUDY_SPACE,
    STUDY_STATE,
    STUDY_STOP_REASON,
)
from modelyard.tuning._result import Study, StudyFailed, StudyState
from modelyard.tuning._resume import StoredStudy, check_compatible, find_study, load_study
from modelyard.tuning._stopping import Finished, stop_reason
from modelyard.tuning._study import Driver
from modelyard.tuning._worker import Objective, error_line


def _set_tags(client: ModelyardClient, run_id: str, tags: dict[str, str]) -> None:
    client.log_batch(run_id, LogBatch(tags=tuple(tags.items())))


def _study_tags(config: StudyConfig, executor: Executor) -> dict[str, str]:
    return {
        STUDY: config.name,
        STUDY_METRIC: config.metric,
        STUDY_MODE: config.mode,
        STUDY_SAMPLER: config.sampler_name,
        STUDY_PRUNER: config.pruner_name,
        STUDY_EXECUTOR: executor.name,
        STUDY_N_TRIALS: str(config.n_trials),
        STUDY_SPACE: config.space_json,
        STUDY_STATE: StudyState.RUNNING.value,
    }


def _settled(config: StudyConfig, stored: StoredStudy) -> tuple[StudyState, str | None] | None:
    """How a stored study ended if it needs no more trials: all of them finished, or a
    stop rule (patience, target) already holds on them. None when work remains."""
    if len(stored.finished) >= config.n_trials:
        return StudyState.COMPLETED, None
    history = [Finished(t.state.value, t.value, t.error) for t in stored.finished]
    reason = stop_reason(history, config.rules, 0.0)
    return (StudyState.STOPPED, reason) if reason is not None else None


def _stored_result(
    client: ModelyardClient,
    config: StudyConfig,
    stored: StoredStudy,
    state: StudyState,
    reason: str | None,
) -> Study:
    """The result of a study that needs no more trials; a dead driver's study is closed."""
    parent = stored.parent
    if parent.tags.get(STUDY_STATE) == StudyState.RUNNING.value or stored.needs_repair(config.mode):
        stored.repair(client, config.metric, config.mode)
        _close_parent(client, parent.id, state, reason)
    elif parent.tags.get(STUDY_STATE) in StudyState.__members__:
        state = StudyState(parent.tags[STUDY_STATE])
        reason = parent.tags.get(STUDY_STOP_REASON) or None
    return Study(
        config.name, parent.id, config.metric, config.mode, list(stored.finished), state, reason
    )


def _open_parent(
    client: ModelyardClient,
    config: StudyConfig,
    executor: Executor,
    experiment_id: int,
    nested_in: str | None,
    stored: StoredStudy | None,
) -> Run:
    """Create the parent run, or reopen a stored one (its dead trials become KILLED)."""
    tags = _study_tags(config, executor)
    if stored is None:
        return client.create_run(
            experiment_id, name=config.name, tags=tags, parent_run_id=nested_in
        )
    if stored.parent.tags.get(STUDY_STOP_REASON):
        tags[STUDY_STOP_REASON] = ""  # tags cannot be deleted; an old reason is void now
    _set_tags(client, stored.parent.id, tags)
    if stored.parent.status is not RunStatus.RUNNING:
        client.update_run(stored.parent.id, status=RunStatus.RUNNING)
    stored.repair(client, config.metric, config.mode)
    return stored.parent


def _close_parent(
    client: ModelyardClient,
    run_id: str,
    state: StudyState,
    reason: str | None,
    status: RunStatus | None = None,
) -> None:
    tags = {STUDY_STATE: state.value}
    if reason:
        tags[STUDY_STOP_REASON] = reason
    _set_tags(client, run_id, tags)
    if status is None:
        status = RunStatus.FAILED if state is StudyState.FAILED else RunStatus.FINISHED
    client.update_run(run_id, status=status)


def run_study(fn: Objective, config: StudyConfig, executor: str | Executor, clock: Clock) -> Study:
    """Run (or resume) a validated study; see ``modelyard.tuning.tune``."""
    from modelyard.tracking import fluent

    session = fluent._get()
    client = session.client
    active = session.active()
    experiment_id = active.experiment_id if active else session.current_experiment().id
    stored: StoredStudy | None = None
    parent = find_study(client, experiment_id, config.name)
    if parent is not None:
        check_compatible(parent, config)
        stored = load_study(client, experiment_id, parent, config.metric)
        settled = _settled(config, stored)
        if settled is not None:
            return _finish(_stored_result(client, config, stored, *settled), config)
    owned = isinstance(executor, str)
    runner = (
        open_executor(executor, workers=config.workers, env=worker_env(session.settings))
        if isinstance(executor, str)
        else executor
    )
    try:
        parent = _open_parent(
            client, config, runner, experiment_id, active.id if active else None, stored
        )
        driver = Driver(fn, config, client, experiment_id, parent.id, stored, clock)
        try:
            ended = driver.run(runner, config.workers or runner.slots)
        except BaseException as exc:  # Ctrl-C, or the server gone: say so where we can
            driver.mark_killed()
            with contextlib.suppress(ModelyardError):
                if isinstance(exc, KeyboardInterrupt):
                    _close_parent(
                        client, parent.id, StudyState.STOPPED, "interrupted", RunStatus.KILLED
                    )
                else:
                    _close_parent(client, parent.id, StudyState.FAILED, error_line(exc))
            raise
    finally:
        if owned:
            runner.close()
    if ended.failure is not None:
        state = StudyState.FAILED
    else:
        state = StudyState.STOPPED if ended.stop_reason else StudyState.COMPLETED
    _close_parent(client, parent.id, state, ended.failure or ended.stop_reason)
    if ended.failure is not None:
        raise StudyFailed(f"study {config.name!r}: {ended.failure}", config.name, parent.id)
    trials = sorted([*driver.loaded, *ended.trials], key=lambda t: t.number)
    study = Study(
        config.name, parent.id, config.metric, config.mode, trials, state, ended.stop_reason
    )
    return _finish(study, config)


def _finish(study: Study, config: StudyConfig) -> Study:
    if config.register_best is not None:
        study.register_best(config.register_best)
    return study
