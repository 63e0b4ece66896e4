"""Bodies of the registry API."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from modelyard.core.models import AliasChange, ModelVersion, RegisteredModel
from modelyard.server._schemas import ArtifactOut, Input


class ModelCreate(Input):
    name: str = Field(min_length=1, max_length=256)
    description: str = Field(default="", max_length=100_000)
    tags: dict[str, str] = Field(default_factory=dict)


class VersionCreate(Input):
    run_id: str = Field(min_length=1, max_length=32)
    artifact_path: str = Field(default="model", max_length=1024)
    description: str = Field(default="", max_length=100_000)
    tags: dict[str, str] = Field(default_factory=dict)


class AliasSet(Input):
    version: int = Field(ge=1)


class ModelOut(BaseModel):
    name: str
    project: str
    description: str
    created_at_ms: int
    updated_at_ms: int
    tags: dict[str, str]
    aliases: dict[str, int]
    latest_version: int | None

    @classmethod
    def of(cls, m: RegisteredModel) -> ModelOut:
        return cls(**m.__dict__)


class VersionOut(BaseModel):
    model: str
    project: str
    version: int
    source_run_id: str | None
    source_uri: str
    flavor: str
    signature: dict[str, Any] | None
    package_digest: str
    status: str
    description: str
    user: str
    created_at_ms: int
    updated_at_ms: int | None
    stage: str
    aliases: list[str]
    tags: dict[str, str]
    files: list[ArtifactOut]

    @classmethod
    def of(cls, v: ModelVersion) -> VersionOut:
        fields = {k: val for k, val in v.__dict__.items() if k not in ("signature_json", "files")}
        fields["aliases"] = list(v.aliases)
        return cls(
            **fields,
            signature=json.loads(v.signature_json) if v.signature_json else None,
            files=[ArtifactOut.of(f) for f in v.files],
        )


class ModelDetail(ModelOut):
    versions: list[VersionOut]


class AliasChangeOut(BaseModel):
    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    user: str
    timestamp_ms: int

    @classmethod
    def of(cls, c: AliasChange) -> AliasChangeOut:
        return cls(**c.__dict__)
