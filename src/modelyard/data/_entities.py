"""Frozen dataset entities, as stores and clients return them. Times are epoch ms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelyard.core.entities import ArtifactEntry


@dataclass(frozen=True)
class Dataset:
    """A named series of versions in a project."""

    name: str
    project: str
    description: str
    created_at_ms: int
    latest_version: int | None = None


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version: its files and, for tables, their profile.

    ``manifest_digest`` is the SHA-256 of the canonical manifest JSON
    (:meth:`modelyard.artifacts.Manifest.to_json`): two versions with the same files
    have the same manifest digest.
    """

    dataset: str
    project: str
    version: int
    manifest_digest: str
    total_size: int
    file_count: int
    message: str
    user: str
    created_at_ms: int
    source_run_id: str | None = None
    files: tuple[ArtifactEntry, ...] = ()
    profile: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``name@vN``."""
        return f"{self.dataset}@v{self.version}"


@dataclass(frozen=True)
class DatasetVersionRef:
    """A version's identity without its files (what lists return)."""

    dataset: str
    project: str
    version: int


@dataclass(frozen=True)
class AddResult:
    """What committing a version did.

    ``created`` is False when the content equals the latest version's: no new version
    was made and ``version`` is that latest one.
    """

    version: DatasetVersion
    created: bool
    uploaded_files: int = 0
    uploaded_bytes: int = 0
    hashed_files: int = 0
    cached_files: int = 0
