"""MLflow's wire format: request bodies (lenient on unknown fields, strict on types) and
the JSON shapes of experiments, runs and metrics, as MLflow's ``service.proto`` has them.

MLflow's client serializes protobuf messages to JSON: ids are strings, int64 fields are
numbers (or numeric strings), enums are their names, fields left at their default may be
missing, and a non-finite double is the string ``"NaN"``, ``"Infinity"`` or
``"-Infinity"``. Its server answers the same way, so responses do too.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from modelyard.core.errors import InvalidInput
from modelyard.core.tracking import (
    DatasetInput,
    DatasetRecord,
    Experiment,
    ExperimentDataset,
    Metric,
    Run,
    RunIO,
    RunStatus,
)
from modelyard.tracking.validation import parse_metric_value

JsonObject = dict[str, object]
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# MLflow's limits on one log-batch request.
MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS, MAX_BATCH_ITEMS = 1000, 100, 100, 1000

_RUN_STATUS_BY_NUMBER = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_VIEW_TYPE_BY_NUMBER = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}


def _metric_value(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError("metric value must be a number (or 'NaN', 'Infinity', '-Infinity')")
    try:
        return parse_metric_value(raw)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


def _not_bool(raw: object) -> object:
    if isinstance(raw, bool):
        raise ValueError("must be an integer, not a boolean")
    return raw


def _experiment_id(raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw)
    raise ValueError(f"experiment id must be a string of digits, got {raw!r}")


def _enum_name(numbers: dict[int, str]) -> object:
    def parse(raw: object) -> object:
        if isinstance(raw, int) and not isinstance(raw, bool):
            if raw not in numbers:
                raise ValueError(f"unknown enum number {raw}")
            return numbers[raw]
        return raw.upper() if isinstance(raw, str) else raw

    return parse


MetricValue = Annotated[float, BeforeValidator(_metric_value)]
Int64 = Annotated[int, BeforeValidator(_not_bool), Field(ge=INT64_MIN, le=INT64_MAX)]
ExperimentId = Annotated[int, BeforeValidator(_experiment_id)]
RunStatusName = Annotated[RunStatus, BeforeValidator(_enum_name(_RUN_STATUS_BY_NUMBER))]
ViewTypeName = Annotated[str, BeforeValidator(_enum_name(_VIEW_TYPE_BY_NUMBER))]


class MlflowInput(BaseModel):
    """A request body: unknown fields are ignored (the client adds fields across versions)."""

    model_config = ConfigDict(extra="ignore", strict=False)


class KeyValue(MlflowInput):
    key: str
    value: str = ""  # protobuf JSON drops empty strings


class RunRef(MlflowInput):
    """Requests naming a run; the client sends ``run_id``, older ones ``run_uuid``."""

    run_id: str = ""
    run_uuid: str = ""

    @property
    def id(self) -> str:
        run_id = self.run_id or self.run_uuid
        if not run_id:
            raise InvalidInput("field 'run_id' is required")
        return run_id


class ExperimentRef(MlflowInput):
    experiment_id: ExperimentId


class ExperimentsRef(MlflowInput):
    experiment_ids: list[ExperimentId] = Field(min_length=1)


class CreateExperimentBody(MlflowInput):
    name: str = Field(min_length=1)
    artifact_location: str = ""
    tags: list[KeyValue] = Field(default_factory=list)


class SearchExperimentsBody(MlflowInput):
    max_results: Int64 = Field(default=1000, ge=1)
    page_token: str | None = None
    filter: str = ""
    order_by: list[str] = Field(default_factory=list)
    view_type: ViewTypeName = "ACTIVE_ONLY"


class UpdateExperimentBody(ExperimentRef):
    new_name: str = Field(min_length=1)


class SetExperimentTagBody(ExperimentRef):
    key: str
    value: str = ""


class CreateRunBody(MlflowInput):
    experiment_id: ExperimentId
    user_id: str = ""
    run_name: str = ""
    start_time: Int64 | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class UpdateRunBody(RunRef):
    status: RunStatusName | None = None
    end_time: Int64 | None = None
    run_name: str = ""


class LogParamBody(RunRef):
    key: str
    value: str = ""


class SetTagBody(RunRef):
    key: str
    value: str = ""


class WireMetric(MlflowInput):
    key: str
    value: MetricValue
    timestamp: Int64 | None = None
    step: Int64 = 0


class LogMetricBody(RunRef, WireMetric):
    pass


class LogBatchBody(RunRef):
    metrics: list[WireMetric] = Field(default_factory=list, max_length=MAX_BATCH_METRICS)
    params: list[KeyValue] = Field(default_factory=list, max_length=MAX_BATCH_PARAMS)
    tags: list[KeyValue] = Field(default_factory=list, max_length=MAX_BATCH_TAGS)


class SearchRunsBody(MlflowInput):
    experiment_ids: list[ExperimentId] = Field(min_length=1)
    filter: str = ""
    run_view_type: ViewTypeName = "ACTIVE_ONLY"
    max_results: Int64 = Field(default=1000, ge=1)
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


class WireDataset(MlflowInput):
    name: str = ""
    digest: str = ""
    source_type: str = ""
    source: str = ""
    schema_: str = Field(default="", alias="schema")
    profile: str = ""


class WireDatasetInput(MlflowInput):
    tags: list[KeyValue] = Field(default_factory=list)
    dataset: WireDataset

    def entity(self) -> DatasetInput:
        """The input as the tracking service records it."""
        d = self.dataset
        record = DatasetRecord(d.name, d.digest, d.source_type, d.source, d.schema_, d.profile)
        return DatasetInput(record, tuple((t.key, t.value) for t in self.tags))


class WireModelRef(MlflowInput):
    model_id: str = Field(min_length=1)


class WireModelOutput(WireModelRef):
    step: Int64 = 0


class LogInputsBody(RunRef):
    """``runs/log-inputs``: datasets (and MLflow 3 logged models) a run read."""

    datasets: list[WireDatasetInput] = Field(default_factory=list, max_length=1000)
    models: list[WireModelRef] = Field(default_factory=list, max_length=1000)


class LogOutputsBody(RunRef):
    """``runs/outputs``: MLflow 3 logged models a run wrote."""

    models: list[WireModelOutput] = Field(default_factory=list, max_length=1000)


class DeleteTagBody(RunRef):
    key: str = Field(min_length=1)


class DeleteExperimentTagBody(ExperimentRef):
    key: str = Field(min_length=1)


class LogModelBody(RunRef):
    """``runs/log-model`` (MLflow 1/2): an ``MLmodel`` description as JSON."""

    model_json: str = Field(min_length=1)


# --- responses ------------------------------------------------------------------------


def wire_float(value: float) -> float | str:
    """A double as protobuf JSON writes it: non-finite values become strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def experiment_artifact_location(experiment_id: int) -> str:
    return f"mlflow-artifacts:/{experiment_id}"


def run_artifact_uri(experiment_id: int, run_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def _pairs(items: dict[str, str]) -> list[JsonObject]:
    return [{"key": k, "value": v} for k, v in sorted(items.items())]


def experiment_json(experiment: Experiment) -> JsonObject:
    """An ``Experiment`` message."""
    return {
        "experiment_id": str(experiment.id),
        "name": experiment.name,
        "artifact_location": experiment_artifact_location(experiment.id),
        "lifecycle_stage": experiment.lifecycle_stage.value,
        "last_update_time": experiment.last_update_time_ms,
        "creation_time": experiment.creation_time_ms,
        "tags": _pairs(experiment.tags),
    }


def metric_json(metric: Metric) -> JsonObject:
    """A ``Metric`` message."""
    return {
        "key": metric.key,
        "value": wire_float(metric.value),
        "timestamp": metric.timestamp_ms,
        "step": metric.step,
    }


def run_info_json(run: Run) -> JsonObject:
    """A ``RunInfo`` message; ``end_time`` is absent while the run has none."""
    info: JsonObject = {
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.user,
        "status": run.status.value,
        "start_time": run.start_time_ms,
        "artifact_uri": run_artifact_uri(run.experiment_id, run.id),
        "lifecycle_stage": run.lifecycle_stage.value,
    }
    if run.end_time_ms is not None:
        info["end_time"] = run.end_time_ms
    return info


def dataset_input_json(item: DatasetInput) -> JsonObject:
    """A ``DatasetInput`` message."""
    d = item.dataset
    dataset: JsonObject = {"name": d.name, "digest": d.digest, "source_type": d.source_type}
    dataset["source"] = d.source
    if d.schema:
        dataset["schema"] = d.schema
    if d.profile:
        dataset["profile"] = d.profile
    return {"tags": [{"key": k, "value": v} for k, v in item.tags], "dataset": dataset}


def dataset_summary_json(found: ExperimentDataset) -> JsonObject:
    """A ``DatasetSummary`` message (``experiments/search-datasets``)."""
    summary: JsonObject = {
        "experiment_id": str(found.experiment_id),
        "name": found.name,
        "digest": found.digest,
    }
    if found.context:
        summary["context"] = found.context
    return summary


def run_json(run: Run, io: RunIO | None = None) -> JsonObject:
    """A ``Run`` message: info, data (latest metric values, params, tags), inputs, outputs."""
    io = io or RunIO()
    inputs: JsonObject = {}
    if io.dataset_inputs:
        inputs["dataset_inputs"] = [dataset_input_json(i) for i in io.dataset_inputs]
    if io.model_inputs:
        inputs["model_inputs"] = [{"model_id": m} for m in io.model_inputs]
    outputs: JsonObject = {}
    if io.model_outputs:
        outputs["model_outputs"] = [{"model_id": m, "step": step} for m, step in io.model_outputs]
    return {
        "info": run_info_json(run),
        "data": {
            "metrics": [metric_json(run.metrics[k]) for k in sorted(run.metrics)],
            "params": _pairs(run.params),
            "tags": _pairs(run.tags),
        },
        "inputs": inputs,
        "outputs": outputs,
    }
