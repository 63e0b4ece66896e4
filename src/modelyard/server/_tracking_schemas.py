"""Bodies of the native tracking API. Metric values travel as numbers or "NaN"/"Infinity"."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from modelyard.core.tracking import Experiment, LifecycleStage, Metric, Run, RunStatus
from modelyard.server._schemas import Input


class Output(BaseModel):
    # JSON has no NaN: send the strings MLflow and pandas understand.
    model_config = ConfigDict(ser_json_inf_nan="strings")


class ExperimentCreate(Input):
    name: str = Field(min_length=1, max_length=256)
    tags: dict[str, str] = Field(default_factory=dict)


class ExperimentOut(Output):
    id: int
    project: str
    name: str
    lifecycle_stage: LifecycleStage
    creation_time_ms: int
    last_update_time_ms: int
    tags: dict[str, str]

    @classmethod
    def of(cls, e: Experiment) -> ExperimentOut:
        return cls(**e.__dict__)


class RunCreate(Input):
    experiment_id: int
    name: str | None = Field(default=None, max_length=256)
    tags: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    parent_run_id: str | None = Field(default=None, max_length=32)
    start_time_ms: int | None = None


class RunUpdate(Input):
    status: RunStatus | None = None
    end_time_ms: int | None = None
    name: str | None = Field(default=None, max_length=256)


class MetricIn(Input):
    key: str
    value: float | str
    step: int = 0
    timestamp_ms: int | None = None


class LogBatchIn(Input):
    batch_id: str | None = Field(default=None, min_length=1, max_length=64)
    # Each metric is an object, or the compact array [key, value, step, timestamp_ms].
    metrics: list[MetricIn | tuple[str, float | str, int, int | None]] = Field(
        default_factory=list, max_length=100_000
    )
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    end_status: RunStatus | None = Field(
        default=None,
        description="FINISHED, FAILED or KILLED: end the run in the batch's transaction",
    )


class LogBatchOut(Output):
    applied: bool = Field(description="false when this batch_id had been applied before")


class MetricOut(Output):
    key: str
    value: float
    step: int
    timestamp_ms: int

    @classmethod
    def of(cls, m: Metric) -> MetricOut:
        return cls(key=m.key, value=m.value, step=m.step, timestamp_ms=m.timestamp_ms)


class RunOut(Output):
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
    params: dict[str, str]
    metrics: dict[str, MetricOut]
    tags: dict[str, str]

    @classmethod
    def of(cls, r: Run) -> RunOut:
        fields = {k: v for k, v in r.__dict__.items() if k != "metrics"}
        return cls(**fields, metrics={k: MetricOut.of(m) for k, m in r.metrics.items()})


class RunSearch(Input):
    experiment_ids: list[int] = Field(min_length=1, max_length=1000)
    filter: str | None = Field(default=None, max_length=10_000)
    order_by: list[str] = Field(default_factory=list, max_length=20)
    max_results: int = Field(default=1000, ge=1, le=50_000)
    page_token: str | None = None
    view: str = "ACTIVE_ONLY"


class RunPage(Output):
    runs: list[RunOut]
    next_page_token: str | None


class MetricPage(Output):
    metrics: list[MetricOut]
    next_page_token: str | None
