"""Tracking entities: experiments, runs and what is logged to them. Times are epoch ms."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")


class RunStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


class LifecycleStage(enum.StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


@dataclass(frozen=True)
class Experiment:
    id: int
    project: str
    name: str
    lifecycle_stage: LifecycleStage
    creation_time_ms: int
    last_update_time_ms: int
    tags: dict[str, str] = field(default_factory=dict)


class Metric(NamedTuple):
    """One logged value. A NamedTuple: cheap to build by the thousand, and it travels as
    a compact JSON array ``[key, value, step, timestamp_ms]``."""

    key: str
    value: float
    step: int
    timestamp_ms: int


@dataclass(frozen=True)
class Run:
    id: str
    experiment_id: int
    project: str
    name: str
    status: RunStatus
    start_time_ms: int
    end_time_ms: int | None
    user: str
    parent_run_id: str | None
    lifecycle_stage: LifecycleStage
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)  # the latest value per key
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset as MLflow describes one a run read (``mlflow.data``'s Dataset message)."""

    name: str
    digest: str
    source_type: str = ""
    source: str = ""
    schema: str = ""
    profile: str = ""


@dataclass(frozen=True)
class DatasetInput:
    """One dataset a run read, with the tags of that use (``mlflow.data.context`` …)."""

    dataset: DatasetRecord
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RunIO:
    """What MLflow records that a run read and wrote besides params, metrics and tags.

    ``model_outputs`` holds ``(logged model id, step)`` pairs.
    """

    dataset_inputs: tuple[DatasetInput, ...] = ()
    model_inputs: tuple[str, ...] = ()
    model_outputs: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ExperimentDataset:
    """A dataset used by some run of an experiment, with the context it was used in."""

    experiment_id: int
    name: str
    digest: str
    context: str


@dataclass(frozen=True)
class LogBatch:
    """One write: metrics, params and tags for one run, applied all or nothing.

    ``batch_id`` makes it idempotent: a batch already applied is not applied again.
    """

    metrics: tuple[Metric, ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    batch_id: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """A page of results and the token for the next page (None at the end)."""

    items: list[T]
    next_page_token: str | None


def run_artifact_namespace(run_id: str) -> str:
    """The artifact index namespace of a run, shared by the native SDK and the MLflow API.

    Args:
        run_id: The run's id.

    Returns:
        The namespace, ``run:<run_id>``.
    """
    return f"run:{run_id}"
