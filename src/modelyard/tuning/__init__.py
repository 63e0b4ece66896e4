"""Hyperparameter search with Optuna's samplers and pruners; trials are child runs.

Public names: ``tune``, ``report``, ``TrialPruned``, ``uniform``, ``loguniform``,
``randint``, ``choice`` (also as ``my.tune`` ...), ``Study``, ``Trial``, ``StudyFailed``,
and ``space_to_json`` / ``space_from_json`` for the ``modelyard.study.space`` tag.
"""

from __future__ import annotations

from modelyard.tuning._result import (
    Study,
    StudyFailed,
    StudyState,
    Trial,
    TrialPruned,
    TrialState,
)
from modelyard.tuning._space import (
    choice,
    loguniform,
    randint,
    space_from_json,
    space_to_json,
    uniform,
)
from modelyard.tuning._worker import report
from modelyard.tuning.fluent import tune

__all__ = [
    "Study",
    "StudyFailed",
    "StudyState",
    "Trial",
    "TrialPruned",
    "TrialState",
    "choice",
    "loguniform",
    "randint",
    "report",
    "space_from_json",
    "space_to_json",
    "tune",
    "uniform",
]
