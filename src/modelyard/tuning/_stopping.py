"""When a study stops early: pure decisions over the finished trials and the elapsed time.

The driver owns the clock and passes ``elapsed_s``; nothing here reads time or does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

FAIL_FAST_TRIALS = 3


@dataclass(frozen=True)
class Finished:
    """A finished trial as the stopping rules see it, in completion order."""

    state: str  # COMPLETE | PRUNED | FAIL
    value: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class StopRules:
    """``patience``: finished trials without a better best; ``target``: good enough;
    ``timeout_s``: stop submitting after this long (trials in flight still finish)."""

    mode: str = "min"
    patience: int | None = None
    target: float | None = None
    timeout_s: float | None = None


def better(value: float, than: float | None, mode: str) -> bool:
    """Whether ``value`` strictly improves on ``than`` (None: nothing yet) under ``mode``."""
    if math.isnan(value):
        return False
    if than is None:
        return True
    return value > than if mode == "max" else value < than


def best_value(history: Sequence[Finished], mode: str) -> float | None:
    """The best value of the COMPLETE trials, or None."""
    best: float | None = None
    for trial in history:
        if (
            trial.state == "COMPLETE"
            and trial.value is not None
            and better(trial.value, best, mode)
        ):
            best = trial.value
    return best


def trials_since_improvement(history: Sequence[Finished], mode: str) -> int:
    """Finished trials (any state) after the one that set the current best; all of them
    when no trial has completed yet."""
    best: float | None = None
    since = 0
    for trial in history:
        if (
            trial.state == "COMPLETE"
            and trial.value is not None
            and better(trial.value, best, mode)
        ):
            best = trial.value
            since = 0
        else:
            since += 1
    return since


def reached(value: float, target: float, mode: str) -> bool:
    """Whether ``value`` is at least as good as ``target``."""
    return value >= target if mode == "max" else value <= target


def stop_reason(history: Sequence[Finished], rules: StopRules, elapsed_s: float) -> str | None:
    """Why the study should stop submitting trials now, or None to go on.

    Target first (the best outcome), then patience, then the timeout.
    """
    best = best_value(history, rules.mode)
    if rules.target is not None and best is not None and reached(best, rules.target, rules.mode):
        return f"target reached: best {best!r} vs target {rules.target!r}"
    if rules.patience is not None:
        stale = trials_since_improvement(history, rules.mode)
        if stale >= rules.patience:
            return f"patience: {stale} finished trials without improvement"
    if rules.timeout_s is not None and elapsed_s >= rules.timeout_s:
        return f"timeout: {elapsed_s:.1f} s elapsed (timeout_s={rules.timeout_s:g})"
    return None


def fail_fast(history: Sequence[Finished]) -> str | None:
    """The error to fail the study with when its first trials all failed, else None.

    The first ``FAIL_FAST_TRIALS`` finished trials failing means the objective itself is
    broken (a typo, a missing file), not an unlucky configuration.
    """
    first = history[:FAIL_FAST_TRIALS]
    if len(first) < FAIL_FAST_TRIALS or any(t.state != "FAIL" for t in first):
        return None
    return (
        f"the first {FAIL_FAST_TRIALS} trials failed; the first error: "
        f"{first[0].error or 'unknown error'}"
    )
