"""Experiments and runs: the rules (permissions, validation, defaults) over the repository."""

from __future__ import annotations

import contextlib
import secrets
from typing import TypeVar

from modelyard.auth import Principal
from modelyard.core.clock import Clock
from modelyard.core.entities import DEFAULT_PROJECT, Role
from modelyard.core.errors import AlreadyExists, InvalidInput, NotFound
from modelyard.core.search import (
    decode_page_token,
    encode_page_token,
    parse_filter,
    parse_order_by,
)
from modelyard.core.tracking import (
    DatasetInput,
    Experiment,
    ExperimentDataset,
    LifecycleStage,
    LogBatch,
    Metric,
    Page,
    Run,
    RunIO,
    RunStatus,
)
from modelyard.store import TrackingRepository
from modelyard.tracking import _experiment_search as experiment_search
from modelyard.tracking.validation import (
    validate_dataset_input,
    validate_metric,
    validate_name,
    validate_param,
    validate_tag,
)

T = TypeVar("T")

DEFAULT_EXPERIMENT_ID = 0
DEFAULT_EXPERIMENT_NAME = "Default"
MAX_SEARCH_RESULTS = 50_000
_STAGES = {
    "ACTIVE_ONLY": (LifecycleStage.ACTIVE.value,),
    "DELETED_ONLY": (LifecycleStage.DELETED.value,),
    "ALL": (LifecycleStage.ACTIVE.value, LifecycleStage.DELETED.value),
}
_ADJECTIVES = ("bold", "calm", "eager", "fast", "keen", "lucid", "merry", "quiet", "sly", "wise")
_NOUNS = ("otter", "heron", "lynx", "panda", "raven", "seal", "tiger", "whale", "wolf", "yak")


def new_run_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(1000):03d}"


def stages_of(view: str) -> tuple[str, ...]:
    try:
        return _STAGES[view.upper()]
    except KeyError:
        raise InvalidInput(
            f"invalid run_view_type {view!r}: use ACTIVE_ONLY, DELETED_ONLY or ALL"
        ) from None


class TrackingService:
    def __init__(self, repo: TrackingRepository, clock: Clock) -> None:
        self._repo = repo
        self._clock = clock

    def now_ms(self) -> int:
        return int(self._clock.now() * 1000)

    def ensure_default_experiment(self) -> None:
        """MLflow's experiment "0", "Default", in the ``default`` project."""
        try:
            self._repo.get_experiment(DEFAULT_EXPERIMENT_ID)
        except NotFound:
            with contextlib.suppress(AlreadyExists):  # another worker got there first
                self._repo.create_experiment(
                    DEFAULT_PROJECT, DEFAULT_EXPERIMENT_NAME, experiment_id=DEFAULT_EXPERIMENT_ID
                )

    # --- experiments --------------------------------------------------------------------

    def create_experiment(
        self, caller: Principal, project: str, name: str, tags: dict[str, str] | None = None
    ) -> Experiment:
        caller.require(project, Role.EDITOR)
        validate_name("experiment", name)
        checked = dict(validate_tag(k, v) for k, v in (tags or {}).items())
        return self._repo.create_experiment(project, name, checked)

    def get_or_create_experiment(self, caller: Principal, project: str, name: str) -> Experiment:
        found = self.find_experiment(caller, project, name)
        return found if found is not None else self.create_experiment(caller, project, name)

    def get_experiment(self, caller: Principal, experiment_id: int) -> Experiment:
        experiment = self._repo.get_experiment(experiment_id)
        caller.require(experiment.project, Role.VIEWER)
        return experiment

    def find_experiment(self, caller: Principal, project: str, name: str) -> Experiment | None:
        caller.require(project, Role.VIEWER)
        return self._repo.find_experiment(project, name)

    def list_experiments(
        self,
        caller: Principal,
        project: str,
        *,
        view: str = "ACTIVE_ONLY",
        name_like: str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[Experiment]:
        caller.require(project, Role.VIEWER)
        _check_max_results(max_results)
        offset = decode_page_token(page_token)
        items = self._repo.list_experiments(
            project,
            stages=stages_of(view),
            name_like=name_like,
            offset=offset,
            limit=max_results + 1,
        )
        return _page(items, offset, max_results)

    def search_experiments(
        self,
        caller: Principal,
        project: str,
        *,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        view: str = "ACTIVE_ONLY",
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[Experiment]:
        """Experiments of ``project`` matching MLflow's experiment filter, in its order.

        See ``tracking._experiment_search`` for the grammar; without ``order_by`` the
        order is by id.

        Raises:
            InvalidInput: a malformed filter, order, page token or page size.
        """
        caller.require(project, Role.VIEWER)
        _check_max_results(max_results)
        offset = decode_page_token(page_token)
        every = self._repo.list_experiments(
            project, stages=stages_of(view), offset=0, limit=MAX_SEARCH_RESULTS * 2
        )
        found = experiment_search.search(every, filter_string, order_by)
        return _page(found[offset : offset + max_results + 1], offset, max_results)

    def set_experiment_tag(
        self, caller: Principal, experiment_id: int, key: str, value: str
    ) -> None:
        self._require_experiment(caller, experiment_id, Role.EDITOR)
        validate_tag(key, value)
        self._repo.set_experiment_tag(experiment_id, key, value)

    def update_experiment(
        self,
        caller: Principal,
        experiment_id: int,
        *,
        name: str | None = None,
        lifecycle_stage: LifecycleStage | None = None,
    ) -> Experiment:
        self._require_experiment(caller, experiment_id, Role.EDITOR)
        if name is not None:
            validate_name("experiment", name)
        if lifecycle_stage is LifecycleStage.DELETED and experiment_id == DEFAULT_EXPERIMENT_ID:
            raise InvalidInput("the Default experiment cannot be deleted")
        return self._repo.update_experiment(
            experiment_id, name=name, lifecycle_stage=lifecycle_stage
        )

    # --- runs ---------------------------------------------------------------------------

    def create_run(
        self,
        caller: Principal,
        experiment_id: int,
        *,
        name: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        parent_run_id: str | None = None,
        start_time_ms: int | None = None,
    ) -> Run:
        """A new RUNNING run with its tags and params, written in one transaction."""
        self._require_experiment(caller, experiment_id, Role.EDITOR)
        for key, value in (params or {}).items():
            validate_param(key, value)
        checked = dict(validate_tag(k, v) for k, v in (tags or {}).items())
        run_name = name or checked.get("mlflow.runName") or new_run_name()
        validate_name("run", run_name)
        checked["mlflow.runName"] = run_name
        checked.setdefault("mlflow.user", caller.user)
        parent = parent_run_id or checked.get("mlflow.parentRunId")
        if parent:
            checked["mlflow.parentRunId"] = parent
        return self._repo.create_run(
            run_id=secrets.token_hex(16),
            experiment_id=experiment_id,
            name=run_name,
            user=caller.user,
            start_time_ms=self.now_ms() if start_time_ms is None else start_time_ms,
            tags=checked,
            params=params or {},
            parent_run_id=parent,
        )

    def get_run(self, caller: Principal, run_id: str) -> Run:
        run = self._repo.get_run(run_id)
        caller.require(run.project, Role.VIEWER)
        return run

    def update_run(
        self,
        caller: Principal,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time_ms: int | None = None,
        name: str | None = None,
    ) -> Run:
        self._require_run(caller, run_id, Role.EDITOR)
        if name is not None:
            validate_name("run", name)
        if status is not None and status.is_terminal and end_time_ms is None:
            end_time_ms = self.now_ms()
        return self._repo.update_run(run_id, status=status, end_time_ms=end_time_ms, name=name)

    def set_run_lifecycle(self, caller: Principal, run_id: str, stage: LifecycleStage) -> Run:
        self._require_run(caller, run_id, Role.EDITOR)
        return self._repo.update_run(run_id, lifecycle_stage=stage)

    def log_batch(
        self,
        caller: Principal,
        run_id: str,
        batch: LogBatch,
        *,
        end_status: RunStatus | None = None,
    ) -> bool:
        """Validate and apply a batch; False when its ``batch_id`` was applied already.

        ``end_status`` (terminal) also ends the run, in the batch's transaction: a run's
        last values and its end are stored together or not at all.
        """
        self._require_run(caller, run_id, Role.EDITOR)
        if end_status is not None and not end_status.is_terminal:
            raise InvalidInput(
                f"end_status must be FINISHED, FAILED or KILLED, got {end_status.value}"
            )
        for metric in batch.metrics:
            validate_metric(metric)
        for key, value in batch.params:
            validate_param(key, value)
        for key, value in batch.tags:
            validate_tag(key, value)
        if batch.batch_id is not None and not 1 <= len(batch.batch_id) <= 64:
            raise InvalidInput("batch_id must be 1-64 characters")
        end = None if end_status is None else (end_status, self.now_ms())
        return self._repo.log_batch(run_id, batch, end=end)

    def metric_history(
        self,
        caller: Principal,
        run_id: str,
        key: str,
        *,
        max_results: int = 100_000,
        page_token: str | None = None,
    ) -> Page[Metric]:
        self._require_run(caller, run_id, Role.VIEWER)
        if not 1 <= max_results <= 1_000_000:
            raise InvalidInput(f"max_results must be between 1 and 1000000, got {max_results}")
        offset = decode_page_token(page_token)
        items = self._repo.metric_history(run_id, key, offset=offset, limit=max_results + 1)
        return _page(items, offset, max_results)

    def sampled_metric_history(
        self, caller: Principal, run_id: str, keys: list[str], *, max_points: int = 2000
    ) -> dict[str, list[Metric]]:
        """Each key's history thinned to about ``max_points`` points (for charts)."""
        self._require_run(caller, run_id, Role.VIEWER)
        if not 2 <= max_points <= 100_000:
            raise InvalidInput(f"max_points must be between 2 and 100000, got {max_points}")
        return self._repo.sampled_metric_history(run_id, keys, max_points)

    def run_stats(self, caller: Principal, project: str) -> dict[int, tuple[int, int]]:
        """Per experiment of ``project``: (active run count, newest run start ms)."""
        caller.require(project, Role.VIEWER)
        return self._repo.run_stats(project)

    def search_runs(
        self,
        caller: Principal,
        experiment_ids: list[int],
        *,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        view: str = "ACTIVE_ONLY",
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[Run]:
        if not experiment_ids:
            raise InvalidInput("experiment_ids must name at least one experiment")
        for experiment_id in set(experiment_ids):
            self._require_experiment(caller, experiment_id, Role.VIEWER)
        _check_max_results(max_results)
        comparisons = parse_filter(filter_string)
        ordering = parse_order_by(order_by)
        offset = decode_page_token(page_token)
        items = self._repo.search_runs(
            experiment_ids,
            comparisons,
            ordering,
            stages=stages_of(view),
            offset=offset,
            limit=max_results + 1,
        )
        return _page(items, offset, max_results)

    # --- tag removal and MLflow inputs/outputs -----------------------------------------

    def delete_experiment_tag(self, caller: Principal, experiment_id: int, key: str) -> None:
        """Remove one experiment tag.

        Raises:
            NotFound: no such experiment or tag. PermissionDenied: not an editor there.
        """
        self._require_experiment(caller, experiment_id, Role.EDITOR)
        self._repo.delete_experiment_tag(experiment_id, key)

    def delete_run_tag(self, caller: Principal, run_id: str, key: str) -> None:
        """Remove one run tag.

        Raises:
            NotFound: no such run or tag. InvalidInput: the run is deleted.
            PermissionDenied: not an editor of the run's project.
        """
        self._require_run(caller, run_id, Role.EDITOR)
        self._repo.delete_run_tag(run_id, key)

    def log_run_io(
        self,
        caller: Principal,
        run_id: str,
        *,
        datasets: tuple[DatasetInput, ...] = (),
        model_inputs: tuple[str, ...] = (),
        model_outputs: tuple[tuple[str, int], ...] = (),
    ) -> list[int]:
        """Record datasets and logged models a run read or wrote (one transaction).

        Datasets naming a modelyard dataset version of the run's project also become
        lineage ``input`` edges (see ``TrackingRepository.log_run_io``).

        Returns:
            The ids of the dataset versions linked to the run.

        Raises:
            NotFound: no such run. InvalidInput: a deleted run or an oversized field.
            PermissionDenied: not an editor of the run's project.
        """
        self._require_run(caller, run_id, Role.EDITOR)
        for item in datasets:
            validate_dataset_input(item)
        return self._repo.log_run_io(
            run_id, datasets=datasets, model_inputs=model_inputs, model_outputs=model_outputs
        )

    def run_io(self, runs: list[Run]) -> dict[str, RunIO]:
        """What each of ``runs`` (already read by the caller) read and wrote."""
        return self._repo.run_io([r.id for r in runs])

    def experiment_datasets(
        self, caller: Principal, experiment_ids: list[int]
    ) -> list[ExperimentDataset]:
        """The datasets the runs of these experiments read, with their contexts."""
        if not experiment_ids:
            raise InvalidInput("experiment_ids must name at least one experiment")
        for experiment_id in set(experiment_ids):
            self._require_experiment(caller, experiment_id, Role.VIEWER)
        return self._repo.experiment_datasets(experiment_ids)

    # --- permission helpers -------------------------------------------------------------

    def _require_experiment(self, caller: Principal, experiment_id: int, role: Role) -> None:
        caller.require(self._repo.project_of_experiment(experiment_id), role)

    def _require_run(self, caller: Principal, run_id: str, role: Role) -> None:
        caller.require(self._repo.project_of_run(run_id), role)


def _check_max_results(max_results: int) -> None:
    if not 1 <= max_results <= MAX_SEARCH_RESULTS:
        raise InvalidInput(
            f"max_results must be between 1 and {MAX_SEARCH_RESULTS}, got {max_results}"
        )


def _page(items: list[T], offset: int, limit: int) -> Page[T]:
    if len(items) > limit:
        return Page(items[:limit], encode_page_token(offset + limit))
    return Page(items, None)
