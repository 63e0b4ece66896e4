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


@dataclass(frozen=True)
class VersionSummary:
    """A version without files or profile, and the rows its profiled tables hold
    (``None`` when no table was profiled)."""

    version: DatasetVersion
    rows: int | None = None


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset for an overview: how many versions, and its latest one."""

    dataset: Dataset
    version_count: int
    latest: VersionSummary | None = None


def profile_rows(profile: dict[str, Any]) -> int | None:
    """The rows of all profiled tables together, or None if no table has a row count."""
    tables = profile.get("tables") if isinstance(profile, dict) else None
    counts = [
        t["num_rows"]
        for t in (tables.values() if isinstance(tables, dict) else ())
        if isinstance(t, dict) and isinstance(t.get("num_rows"), int)
    ]
    return sum(counts) if counts else None
