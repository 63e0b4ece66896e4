"""Finding a stored study and reading back its trials, to resume it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from modelyard.client import ModelyardClient
from modelyard.core.errors import InvalidInput
from modelyard.core.tracking import Run, RunStatus
from modelyard.tuning._config import StudyConfig
from modelyard.tuning._records import (
    PARENT_RUN,
    STUDY,
    STUDY_BEST_TRIAL,
    STUDY_METRIC,
    STUDY_MODE,
    STUDY_SPACE,
    best_batch,
    is_unfinished,
    run_status,
    trial_from_run,
    trial_number,
    trial_params,
)
from modelyard.tuning._result import Trial, best_of
from modelyard.tuning._space import Scalar

PAGE = 1000


@dataclass
class StoredStudy:
    """A study found in the store: its parent run, finished trials, unfinished ones."""

    parent: Run
    finished: list[Trial] = field(default_factory=list)
    unfinished: list[Run] = field(default_factory=list)
    unclosed: list[Trial] = field(default_factory=list)  # finished, run still RUNNING
    next_number: int = 0

    def stale_best(self, mode: str) -> Trial | None:
        """The best finished trial, if the parent run does not show it yet (its driver
        died between the trial and the parent's update)."""
        best = best_of(self.finished, mode)
        if best is None or self.parent.tags.get(STUDY_BEST_TRIAL) == str(best.number):
            return None
        return best

    def needs_repair(self, mode: str) -> bool:
        return bool(self.unfinished or self.unclosed or self.stale_best(mode))

    def repair(self, client: ModelyardClient, metric: str, mode: str) -> None:
        """Close what a dead driver left open: its running trials KILLED, finished trials
        whose worker died before ending the run FINISHED (or FAILED), the best shown."""
        for run in self.unfinished:
            client.update_run(run.id, status=RunStatus.KILLED)
        for trial in self.unclosed:
            client.update_run(trial.run_id, status=run_status(trial.state))
        best = self.stale_best(mode)
        if best is not None:
            client.log_batch(self.parent.id, best_batch(metric, best, len(self.finished)))

    def unfinished_params(self) -> list[dict[str, Scalar]]:
        """Parameters of the trials a dead driver left running (to run first)."""
        out = []
        for run in sorted(self.unfinished, key=lambda r: trial_number(r) or 0):
            params = trial_params(run)
            if params is not None:
                out.append(params)
        return out


def _search_all(client: ModelyardClient, experiment_id: int, filter_string: str) -> list[Run]:
    runs: list[Run] = []
    token: str | None = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=filter_string,
            order_by=["attributes.start_time ASC"],
            max_results=PAGE,
            page_token=token,
        )
        runs.extend(page.items)
        token = page.next_page_token
        if not token:
            return runs


def find_study(client: ModelyardClient, experiment_id: int, name: str) -> Run | None:
    """The parent run of study ``name`` in the experiment (the oldest one), or None."""
    page = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{STUDY}` = '{name}'",
        order_by=["attributes.start_time ASC"],
        max_results=1,
    )
    return page.items[0] if page.items else None


def _space_difference(stored: dict[str, Any], given: dict[str, Any]) -> str:
    missing = [k for k in stored if k not in given]
    extra = [k for k in given if k not in stored]
    if missing:
        return f"parameter {missing[0]!r} is missing from the space given"
    if extra:
        return f"parameter {extra[0]!r} is not in the stored space"
    for key in stored:
        if stored[key] != given[key]:
            return f"space[{key!r}] is {given[key]} here, but {stored[key]} in the stored study"
    return "the space differs"


def check_compatible(parent: Run, config: StudyConfig) -> None:
    """Resuming needs the same space, metric and mode.

    Raises:
        InvalidInput: naming the first difference.
    """
    where = f"study {config.name!r} exists (run {parent.id})"
    stored_metric = parent.tags.get(STUDY_METRIC)
    if stored_metric != config.metric:
        raise InvalidInput(f"{where} with metric {stored_metric!r}, not {config.metric!r}")
    stored_mode = parent.tags.get(STUDY_MODE)
    if stored_mode != config.mode:
        raise InvalidInput(f"{where} with mode {stored_mode!r}, not {config.mode!r}")
    try:
        stored_space = json.loads(parent.tags.get(STUDY_SPACE, ""))
    except ValueError:
        raise InvalidInput(f"{where} but its stored space is unreadable") from None
    given = json.loads(config.space_json)
    if stored_space != given:
        raise InvalidInput(f"{where}: {_space_difference(stored_space, given)}")


def load_study(
    client: ModelyardClient, experiment_id: int, parent: Run, metric: str
) -> StoredStudy:
    """The study's child trials: finished ones read back, unfinished ones listed."""
    stored = StoredStudy(parent)
    children = _search_all(client, experiment_id, f"tags.`{PARENT_RUN}` = '{parent.id}'")
    numbers = [-1]
    for run in children:
        number = trial_number(run)
        if number is None:
            continue
        numbers.append(number)
        trial = trial_from_run(run, metric, client.metric_history)
        if trial is not None:
            stored.finished.append(trial)
            if run.status is RunStatus.RUNNING:
                stored.unclosed.append(trial)
        elif is_unfinished(run):
            stored.unfinished.append(run)
    stored.finished.sort(key=lambda t: t.number)
    stored.next_number = max(numbers) + 1
    return stored
