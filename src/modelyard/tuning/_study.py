"""The driver: Optuna ask-and-tell in this process, trials run by an executor.

It keeps ``executor.slots`` trials in flight. For each trial it creates the child run
(tags, params), submits ``run_trial`` with a snapshot of the finished trials (for
pruning in the worker), and tells Optuna the outcome. The parent run shows the best
trial after every improvement, so an interrupted study still shows its best so far.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.client import ModelyardClient
from modelyard.core.clock import Clock
from modelyard.core.errors import ModelyardError
from modelyard.core.tracking import LogBatch, RunStatus
from modelyard.executors import Executor, WorkerLost
from modelyard.tuning._config import StudyConfig
from modelyard.tuning._pruning import SnapshotTrial, quiet_optuna
from modelyard.tuning._records import (
    best_batch,
    outcome_tags,
    param_text,
    run_status,
    trial_from_run,
    trial_tags,
)
from modelyard.tuning._result import Trial, TrialState, best_of
from modelyard.tuning._samplers import build_sampler, direction, grid_order
from modelyard.tuning._space import Scalar, to_optuna
from modelyard.tuning._stopping import Finished, better, fail_fast, stop_reason
from modelyard.tuning._worker import Objective, TrialOutcome, TrialSpec, error_line, run_trial

if TYPE_CHECKING:
    import optuna

    from modelyard.tuning._resume import StoredStudy


@dataclass
class _Flight:
    number: int
    run_id: str
    trial: optuna.Trial
    params: dict[str, Scalar]


@dataclass
class Ended:
    """How the driver loop ended: the trials it finished, a stop reason, a failure."""

    trials: list[Trial]
    stop_reason: str | None
    failure: str | None


class Driver:
    """Runs one study's remaining trials on an executor (see the module docstring)."""

    def __init__(
        self,
        fn: Objective,
        config: StudyConfig,
        client: ModelyardClient,
        experiment_id: int,
        parent_id: str,
        stored: StoredStudy | None,
        clock: Clock,
    ) -> None:
        import optuna

        self.fn, self.config, self.client = fn, config, client
        self.experiment_id, self.parent_id, self.clock = experiment_id, parent_id, clock
        self.distributions = to_optuna(config.space)
        loaded = stored.finished if stored else []
        with quiet_optuna():
            self.study = optuna.create_study(
                direction=direction(config.mode),
                sampler=build_sampler(config.sampler, config.space, config.seed, config.n_trials),
                pruner=optuna.pruners.NopPruner(),  # workers prune; see _pruning
            )
        for trial in loaded:
            self._add_loaded(trial)
        queued = stored.unfinished_params() if stored else []
        if config.is_grid:
            done = [*(t.params for t in loaded), *queued]
            queued += grid_order(config.space, config.seed, done)
        for params in queued:
            self.study.enqueue_trial(dict(params))
        self.loaded = loaded
        self.finished: list[Trial] = []
        self.history = [Finished(t.state.value, t.value, t.error) for t in loaded]
        self.snapshot = [self._snapshot_of(t, {}) for t in loaded if t.state is not TrialState.FAIL]
        self.best = best_of(loaded, config.mode)
        self.best_shown = True  # a loaded best is on the parent run already
        self.next_number = stored.next_number if stored else 0
        self.in_flight: dict[Future[TrialOutcome], _Flight] = {}

    # --- Optuna bookkeeping --------------------------------------------------------------

    def _add_loaded(self, trial: Trial) -> None:
        from optuna.trial import TrialState as OptunaState
        from optuna.trial import create_trial

        state = {
            TrialState.COMPLETE: OptunaState.COMPLETE,
            TrialState.PRUNED: OptunaState.PRUNED,
            TrialState.FAIL: OptunaState.FAIL,
        }[trial.state]
        with contextlib.suppress(ValueError, KeyError):  # params outside the space: no prior
            self.study.add_trial(
                create_trial(
                    state=state,
                    value=trial.value if trial.state is TrialState.COMPLETE else None,
                    params=dict(trial.params),
                    distributions={k: self.distributions[k] for k in trial.params},
                    intermediate_values=dict(trial.intermediate),
                )
            )

    def _snapshot_of(self, trial: Trial, attrs: dict[str, Any]) -> SnapshotTrial:
        return SnapshotTrial(trial.state.value, trial.value, dict(trial.intermediate), attrs)

    def _tell(self, flight: _Flight, outcome: TrialOutcome) -> None:
        from optuna.trial import TrialState as OptunaState

        for step, value in sorted(outcome.intermediate.items()):
            flight.trial.report(value, step)
        if outcome.state is TrialState.COMPLETE:
            self.study.tell(flight.trial, outcome.value)
        elif outcome.state is TrialState.PRUNED:
            self.study.tell(flight.trial, state=OptunaState.PRUNED)
        else:
            self.study.tell(flight.trial, state=OptunaState.FAIL)

    # --- one trial -----------------------------------------------------------------------

    def _submit(self, executor: Executor) -> None:
        with quiet_optuna():
            trial = self.study.ask(self.distributions)
        params = {name: trial.params[name] for name in self.config.space}
        number, self.next_number = self.next_number, self.next_number + 1
        run = self.client.create_run(  # params and tags in one request, one transaction
            self.experiment_id,
            name=f"trial-{number}",
            tags=trial_tags(number, params),
            params={k: param_text(v) for k, v in params.items()},
            parent_run_id=self.parent_id,
        )
        spec = TrialSpec(
            run=run,
            number=number,
            params=params,
            metric=self.config.metric,
            mode=self.config.mode,
            pruner=self.config.pruner,
            space=self.config.space,
            snapshot=tuple(self.snapshot),
        )
        try:
            future = executor.submit(run_trial, self.fn, spec)
        except Exception as exc:  # e.g. an objective that cannot be pickled
            future = Future()
            future.set_exception(exc)
        self.in_flight[future] = _Flight(number, run.id, trial, params)

    def _recover(self, flight: _Flight, exc: BaseException) -> TrialOutcome:
        """The worker raised or vanished: use what it stored, else mark the trial FAIL."""
        run = self.client.get_run(flight.run_id)
        stored = trial_from_run(run, self.config.metric, self.client.metric_history)
        if stored is not None:
            if run.status is RunStatus.RUNNING:  # it died between its last two writes
                self.client.update_run(run.id, status=run_status(stored.state))
            return TrialOutcome(
                state=stored.state,
                value=stored.value,
                intermediate=dict(stored.intermediate),
                error=stored.error,
                duration_s=stored.duration_s or 0.0,
                node=stored.node or "",
            )
        error = f"worker lost: {exc}" if isinstance(exc, WorkerLost) else error_line(exc)
        tags = tuple(outcome_tags(TrialState.FAIL, None, None, error).items())
        self.client.log_batch(flight.run_id, LogBatch(tags=tags))
        self.client.update_run(flight.run_id, status=RunStatus.FAILED)
        return TrialOutcome(TrialState.FAIL, None, error=error)

    def _finish(self, future: Future[TrialOutcome]) -> Trial:
        flight = self.in_flight.pop(future)
        try:
            outcome = future.result()
        except Exception as exc:  # WorkerLost, or anything the worker raised
            outcome = self._recover(flight, exc)
        self._tell(flight, outcome)
        trial = Trial(
            number=flight.number,
            run_id=flight.run_id,
            state=outcome.state,
            params=flight.params,
            value=outcome.value,
            intermediate=outcome.intermediate,
            error=outcome.error,
            node=outcome.node or None,
            duration_s=outcome.duration_s,
        )
        self.finished.append(trial)
        self.history.append(Finished(trial.state.value, trial.value, trial.error))
        if trial.state is not TrialState.FAIL:
            self.snapshot.append(self._snapshot_of(trial, outcome.pruner_attrs))
        current = self.best.value if self.best is not None else None
        if (
            trial.state is TrialState.COMPLETE
            and trial.value is not None
            and better(trial.value, current, self.config.mode)
        ):
            self.best = trial
            self.best_shown = False
        return trial

    def _show_best(self) -> None:
        """Write a new best to the parent run (after the next trials were submitted: the
        workers do not wait for it)."""
        if self.best is None or self.best_shown:
            return
        batch = best_batch(self.config.metric, self.best, len(self.history))
        self.client.log_batch(self.parent_id, batch)
        self.best_shown = True

    # --- the loop ------------------------------------------------------------------------

    def run(self, executor: Executor, slots: int) -> Ended:
        """Run until ``n_trials`` finished trials in total, a stop rule, or a failure."""
        remaining = self.config.n_trials - len(self.loaded)
        started = self.clock.monotonic()
        # Fail fast on this call's own first trials: a resumed study whose objective was
        # fixed since must not fail again on the old failures.
        fresh = len(self.history)
        submitted, reason, failure = 0, None, None
        while True:
            while failure is None and len(self.in_flight) < slots and submitted < remaining:
                reason = reason or stop_reason(
                    self.history, self.config.rules, self.clock.monotonic() - started
                )
                if reason is not None:
                    break
                self._submit(executor)
                submitted += 1
            self._show_best()
            if not self.in_flight:
                break
            done, _ = wait(list(self.in_flight), return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: self.in_flight[f].number):
                self._finish(future)
                failure = failure or fail_fast(self.history[fresh:])
        total = len(self.loaded) + len(self.finished)
        stopped = reason if reason is not None and total < self.config.n_trials else None
        return Ended(self.finished, stopped, failure)

    def mark_killed(self) -> None:
        """Best effort, when the driver itself is interrupted: trials in flight are KILLED."""
        for flight in list(self.in_flight.values()):
            with contextlib.suppress(ModelyardError):
                self.client.update_run(flight.run_id, status=RunStatus.KILLED)
