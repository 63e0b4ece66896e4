"""MLflow's wire format for logged models and the model registry.

Request bodies follow ``service.proto`` (``CreateLoggedModel``, ``SearchLoggedModels``
…) and ``model_registry.proto`` (``CreateRegisteredModel``, ``CreateModelVersion`` …);
responses are the ``LoggedModel``, ``RegisteredModel`` and ``ModelVersion`` messages as
protobuf JSON (versions are strings, times epoch ms, stages MLflow's names).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import BeforeValidator, Field

from modelyard.core.models import ModelVersion, RegisteredModel
from modelyard.server.routes._mlflow_schemas import (
    ExperimentId,
    Int64,
    JsonObject,
    KeyValue,
    MlflowInput,
    experiment_artifact_location,
)
from modelyard.store.logged_model_repo import LoggedModel

_LOGGED_MODEL_STATUS_BY_NUMBER = {
    0: "LOGGED_MODEL_STATUS_UNSPECIFIED",
    1: "LOGGED_MODEL_PENDING",
    2: "LOGGED_MODEL_READY",
    3: "LOGGED_MODEL_UPLOAD_FAILED",
}
LOGGED_MODEL_STATUSES = frozenset(_LOGGED_MODEL_STATUS_BY_NUMBER.values()) - {
    "LOGGED_MODEL_STATUS_UNSPECIFIED"
}


def _status_name(raw: object) -> object:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return _LOGGED_MODEL_STATUS_BY_NUMBER.get(raw, raw)
    return raw.upper() if isinstance(raw, str) else raw


def _version_text(raw: object) -> object:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    return raw


LoggedModelStatus = Annotated[str, BeforeValidator(_status_name)]
VersionText = Annotated[str, BeforeValidator(_version_text)]


# --- logged models ----------------------------------------------------------------------


class CreateLoggedModelBody(MlflowInput):
    experiment_id: ExperimentId
    name: str = ""
    model_type: str = ""
    source_run_id: str = ""
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class FinalizeLoggedModelBody(MlflowInput):
    status: LoggedModelStatus


class LoggedModelTagsBody(MlflowInput):
    tags: list[KeyValue] = Field(default_factory=list)


class LoggedModelParamsBody(MlflowInput):
    params: list[KeyValue] = Field(default_factory=list)


class SearchLoggedModelsBody(MlflowInput):
    experiment_ids: list[ExperimentId] = Field(min_length=1)
    filter: str = ""
    max_results: Int64 = Field(default=100, ge=1, le=10_000)
    order_by: list[dict[str, object]] = Field(default_factory=list)
    page_token: str | None = None
    datasets: list[dict[str, object]] = Field(default_factory=list)


def logged_model_artifact_uri(experiment_id: int, model_id: str) -> str:
    """Where a logged model's files go, as MLflow's own server answers it."""
    return f"{experiment_artifact_location(experiment_id)}/models/{model_id}/artifacts"


def _pairs(items: dict[str, str]) -> list[JsonObject]:
    return [{"key": k, "value": v} for k, v in sorted(items.items())]


def logged_model_json(model: LoggedModel) -> JsonObject:
    """A ``LoggedModel`` message (``info`` and ``data``; no metrics are recorded)."""
    info: JsonObject = {
        "model_id": model.id,
        "experiment_id": str(model.experiment_id),
        "name": model.name,
        "creation_timestamp_ms": model.created_at_ms,
        "last_updated_timestamp_ms": model.updated_at_ms,
        "artifact_uri": logged_model_artifact_uri(model.experiment_id, model.id),
        "status": model.status,
        "tags": _pairs(model.tags),
    }
    if model.model_type:
        info["model_type"] = model.model_type
    if model.source_run_id:
        info["source_run_id"] = model.source_run_id
    if model.status_message:
        info["status_message"] = model.status_message
    return {"info": info, "data": {"params": _pairs(model.params), "metrics": []}}


# --- registry ---------------------------------------------------------------------------


class CreateRegisteredModelBody(MlflowInput):
    name: str = Field(min_length=1)
    tags: list[KeyValue] = Field(default_factory=list)
    description: str = ""


class CreateModelVersionBody(MlflowInput):
    name: str = Field(min_length=1)
    source: str = ""
    run_id: str = ""
    tags: list[KeyValue] = Field(default_factory=list)
    run_link: str = ""
    description: str = ""
    model_id: str = ""


class SetAliasBody(MlflowInput):
    name: str = Field(min_length=1)
    alias: str = Field(min_length=1)
    version: VersionText = Field(min_length=1)


class AliasRefBody(MlflowInput):
    name: str = Field(min_length=1)
    alias: str = Field(min_length=1)


class ModelRefBody(MlflowInput):
    name: str = Field(min_length=1)


class RenameModelBody(MlflowInput):
    name: str = Field(min_length=1)
    new_name: str = Field(min_length=1)


class UpdateModelBody(MlflowInput):
    name: str = Field(min_length=1)
    description: str = ""


class ModelTagBody(MlflowInput):
    name: str = Field(min_length=1)
    key: str = ""
    value: str = ""


class ModelTagRefBody(MlflowInput):
    name: str = Field(min_length=1)
    key: str = ""


class VersionRefBody(MlflowInput):
    name: str = Field(min_length=1)
    version: VersionText = Field(min_length=1)


class UpdateVersionBody(VersionRefBody):
    description: str = ""


class TransitionStageBody(VersionRefBody):
    stage: str = Field(min_length=1)
    archive_existing_versions: bool = False


class VersionTagBody(VersionRefBody):
    key: str = ""
    value: str = ""


class VersionTagRefBody(VersionRefBody):
    key: str = ""


class LatestVersionsBody(MlflowInput):
    name: str = Field(min_length=1)
    stages: list[str] = Field(default_factory=list)


def logged_model_id_of(version: ModelVersion) -> str | None:
    """The MLflow 3 logged model a version was registered from, if any."""
    prefix = "models:/m-"
    if version.source_uri.startswith(prefix):
        return version.source_uri[len("models:/") :].strip("/")
    return None


def model_version_json(version: ModelVersion) -> JsonObject:
    """A ``ModelVersion`` message."""
    out: JsonObject = {
        "name": version.model,
        "version": str(version.version),
        "creation_timestamp": version.created_at_ms,
        "last_updated_timestamp": version.updated_at_ms or version.created_at_ms,
        "user_id": version.user,
        "current_stage": version.stage,
        "description": version.description,
        "source": version.source_uri,
        "run_id": version.source_run_id or "",
        "status": version.status,
        "tags": _pairs(version.tags),
        "aliases": list(version.aliases),
    }
    model_id = logged_model_id_of(version)
    if model_id:
        out["model_id"] = model_id
    return out


def registered_model_json(model: RegisteredModel, latest: Sequence[ModelVersion]) -> JsonObject:
    """A ``RegisteredModel`` message; ``latest`` is the newest version of each stage."""
    return {
        "name": model.name,
        "creation_timestamp": model.created_at_ms,
        "last_updated_timestamp": model.updated_at_ms,
        "description": model.description,
        "latest_versions": [model_version_json(v) for v in latest],
        "tags": _pairs(model.tags),
        "aliases": [
            {"alias": alias, "version": str(version)}
            for alias, version in sorted(model.aliases.items())
        ],
    }
