"""Pruning decided in the worker, against a snapshot of the study's finished trials.

The driver owns the real Optuna study; a worker cannot reach it. So each submission
carries a ``Snapshot`` (intermediate values, final values and states of the trials
finished so far), and the worker rebuilds a throwaway in-memory study from it with the
same pruner: Optuna's own ``should_prune`` then decides exactly as it would in the driver.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard.tuning._samplers import PrunerSpec, build_pruner, direction
from modelyard.tuning._space import Distribution, Scalar, to_optuna

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class SnapshotTrial:
    """What a pruner needs of one finished trial.

    ``system_attrs`` carries what a pruner stored on the trial while it ran (successive
    halving records the value it had at each rung there).
    """

    state: str  # COMPLETE | PRUNED
    value: float | None
    intermediate: Mapping[int, float]
    system_attrs: Mapping[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence Optuna's INFO lines ("A new study created ...") for a block."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


class PruneJudge:
    """One trial's pruning decisions: ``report(step, value)`` answers "prune now?"."""

    def __init__(
        self,
        pruner: PrunerSpec,
        mode: str,
        space: Mapping[str, Distribution],
        params: Mapping[str, Scalar],
        snapshot: tuple[SnapshotTrial, ...],
    ) -> None:
        import optuna
        from optuna.trial import TrialState, create_trial

        with quiet_optuna():
            self._study = optuna.create_study(
                direction=direction(mode),
                pruner=build_pruner(pruner),
                sampler=optuna.samplers.RandomSampler(seed=0),
            )
            for past in snapshot:
                state = TrialState.COMPLETE if past.state == "COMPLETE" else TrialState.PRUNED
                value = past.value if state is TrialState.COMPLETE else None
                self._study.add_trial(
                    create_trial(
                        state=state,
                        value=value,
                        intermediate_values=dict(past.intermediate),
                        system_attrs=dict(past.system_attrs),
                    )
                )
            self._study.enqueue_trial(dict(params))
            self._trial: optuna.Trial = self._study.ask(to_optuna(space))
        self._reported: set[int] = set()

    def report(self, step: int, value: float) -> bool:
        """Record ``value`` at ``step``; True if the pruner says to stop this trial.

        A step reported twice keeps its first value (Optuna's rule) and is judged again.
        """
        if step not in self._reported:
            self._reported.add(step)
            self._trial.report(value, step)
        return bool(self._trial.should_prune())

    def system_attrs(self) -> dict[str, Any]:
        """What the pruner stored on this trial (for the next snapshots)."""
        stored = self._study.trials[-1].system_attrs
        return {k: v for k, v in stored.items() if k.startswith("completed_rung_")}
