"""Bodies of the dataset and lineage APIs."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel, Field

from modelyard.core.datasets import Dataset, DatasetVersion
from modelyard.data.diff import DatasetDiff
from modelyard.server._schemas import ArtifactOut, Input


class MissingBlobsIn(Input):
    digests: list[str] = Field(max_length=10_000)


class MissingBlobsOut(BaseModel):
    missing: list[str]


class BlobLocationOut(BaseModel):
    """Where a client on the server's machine may place blobs itself.

    ``kind`` is ``file`` (``root`` is the store's folder, ``store_id`` the id in its
    ``store-id`` file) or ``server`` (blobs go through the upload routes)."""

    kind: str
    root: str | None = None
    store_id: str | None = None


class BlobOut(BaseModel):
    digest: str
    size: int


class BlobBatchOut(BaseModel):
    stored: list[BlobOut]


class FileIn(Input):
    path: str = Field(min_length=1, max_length=1024)
    digest: str = Field(min_length=64, max_length=64)
    size: int = Field(ge=0)


class VersionCommit(Input):
    files: list[FileIn] = Field(min_length=1, max_length=1_000_000)
    message: str = Field(default="", max_length=4096)
    profile: dict[str, Any] | None = None
    run_id: str | None = Field(default=None, min_length=1, max_length=32)


class InputRecord(Input):
    run_id: str = Field(min_length=1, max_length=32)


class DatasetOut(BaseModel):
    name: str
    project: str
    description: str
    created_at_ms: int
    latest_version: int | None

    @classmethod
    def of(cls, d: Dataset) -> DatasetOut:
        return cls(**dataclasses.asdict(d))


class DatasetVersionOut(BaseModel):
    dataset: str
    project: str
    version: int
    ref: str
    manifest_digest: str
    total_size: int
    file_count: int
    message: str
    user: str
    created_at_ms: int
    source_run_id: str | None
    files: list[ArtifactOut]
    profile: dict[str, Any]
    created: bool | None = None

    @classmethod
    def of(cls, v: DatasetVersion, created: bool | None = None) -> DatasetVersionOut:
        return cls(
            dataset=v.dataset,
            project=v.project,
            version=v.version,
            ref=v.ref,
            manifest_digest=v.manifest_digest,
            total_size=v.total_size,
            file_count=v.file_count,
            message=v.message,
            user=v.user,
            created_at_ms=v.created_at_ms,
            source_run_id=v.source_run_id,
            files=[ArtifactOut.of(f) for f in v.files],
            profile=v.profile,
            created=created,
        )


class DiffOut(BaseModel):
    old: str
    new: str
    added: list[ArtifactOut]
    removed: list[ArtifactOut]
    changed: list[dict[str, Any]]
    unchanged: int
    tables: list[dict[str, Any]]

    @classmethod
    def of(cls, old: DatasetVersion, new: DatasetVersion, diff: DatasetDiff) -> DiffOut:
        return cls(
            old=old.ref,
            new=new.ref,
            added=[ArtifactOut.of(f) for f in diff.added],
            removed=[ArtifactOut.of(f) for f in diff.removed],
            changed=[dataclasses.asdict(c) for c in diff.changed],
            unchanged=diff.unchanged,
            tables=[dataclasses.asdict(t) for t in diff.tables],
        )
