"""What a study returns: frozen ``Trial`` records, the ``Study`` summary, the errors."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import optuna

from modelyard.core.errors import InvalidInput, ModelyardError
from modelyard.registry.cache import MANIFEST_FILE
from modelyard.tuning._space import Scalar
from modelyard.tuning._stopping import better

if TYPE_CHECKING:
    from modelyard.core.models import ModelVersion

MODEL_PATH = "model"


class TrialPruned(optuna.exceptions.TrialPruned):
    """Raised by ``my.report`` when the pruner stops a trial; the objective may raise it too.

    A subclass of Optuna's ``TrialPruned``: code that catches Optuna's catches this one.
    """


class StudyFailed(ModelyardError):
    """The study could not go on: its first trials all failed (the message names the
    first error). The study's runs are stored with state FAILED."""

    def __init__(self, message: str, study: str = "", run_id: str = "") -> None:
        super().__init__(message)
        self.study = study
        self.run_id = run_id


class TrialState(enum.StrEnum):
    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAIL = "FAIL"


class StudyState(enum.StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Trial:
    """One finished trial; ``run_id`` is its child run."""

    number: int
    run_id: str
    state: TrialState
    params: Mapping[str, Scalar]
    value: float | None
    intermediate: Mapping[int, float] = field(default_factory=dict)
    error: str | None = None
    node: str | None = None
    duration_s: float | None = None


def best_of(trials: list[Trial], mode: str) -> Trial | None:
    """The COMPLETE trial with the best value (the lowest number among equals)."""
    best: Trial | None = None
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state is not TrialState.COMPLETE or trial.value is None:
            continue
        if best is None or better(trial.value, best.value, mode):
            best = trial
    return best


@dataclass
class Study:
    """A tuning study: its parent run, its trials and how it ended."""

    name: str
    run_id: str
    metric: str
    mode: str
    trials: list[Trial]
    state: StudyState
    stop_reason: str | None = None
    registered: ModelVersion | None = None

    @property
    def best_trial(self) -> Trial | None:
        """The best COMPLETE trial, or None when none completed."""
        return best_of(self.trials, self.mode)

    @property
    def best_params(self) -> dict[str, Scalar]:
        """The best trial's parameters.

        Raises:
            InvalidInput: when no trial completed.
        """
        return dict(self._best().params)

    @property
    def best_value(self) -> float:
        """The best trial's value.

        Raises:
            InvalidInput: when no trial completed.
        """
        value = self._best().value
        if value is None:  # a COMPLETE trial always has a value
            raise InvalidInput(f"study {self.name!r}: the best trial has no value")
        return value

    def _best(self) -> Trial:
        best = self.best_trial
        if best is None:
            raise InvalidInput(f"study {self.name!r} has no completed trial")
        return best

    def register_best(self, model_name: str) -> ModelVersion:
        """Register the model the best trial logged (``my.log_model(model)`` in the
        objective, at path ``model``) as the next version of ``model_name``.

        Raises:
            InvalidInput: no completed trial, or the best trial logged no model.
        """
        from modelyard.registry.service import validate_model_name
        from modelyard.tracking import fluent

        validate_model_name(model_name)
        best = self._best()
        session = fluent._get()
        logged = session.client.list_run_artifacts(best.run_id)
        if not any(e.path == f"{MODEL_PATH}/{MANIFEST_FILE}" for e in logged):
            raise InvalidInput(
                f"study {self.name!r}: the best trial {best.number} (run {best.run_id}) logged "
                f"no model: call my.log_model(model) in the objective"
            )
        version = session.client.register_version(
            session.settings.project, model_name, best.run_id, MODEL_PATH
        )
        self.registered = version
        return version

    def __repr__(self) -> str:
        best = self.best_trial
        shown = f"best={best.value!r} (trial {best.number})" if best else "no completed trial"
        return (
            f"<Study {self.name} {self.state.value} {len(self.trials)} trials "
            f"{self.metric} {self.mode} {shown}>"
        )
