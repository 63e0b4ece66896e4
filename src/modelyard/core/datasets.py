"""Dataset entities and references, as stores, services and clients share them.

Frozen entities (times are epoch ms), dataset names and ``name@vN`` / ``name@latest``
references. No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import InvalidInput

LATEST = "latest"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_VERSION_RE = re.compile(r"^v?([1-9][0-9]{0,9})$")


def validate_dataset_name(name: str) -> str:
    """Return ``name`` if it is a valid dataset name.

    A name is 1-128 letters, digits, ``_``, ``.`` and ``-``, starting with a letter or
    digit; ``/`` and ``@`` are never allowed (they separate paths and versions).

    Raises:
        InvalidInput: anything else; the message names the offending character.
    """
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        bad = next((c for c in ("/", "@") if isinstance(name, str) and c in name), None)
        reason = f"it contains {bad!r}" if bad else "use 1-128 letters, digits, _ . -"
        raise InvalidInput(
            f"invalid dataset name {name!r}: {reason} (starting with a letter or digit)"
        )
    return name


@dataclass(frozen=True)
class DatasetRef:
    """A parsed reference; ``version`` None means the latest version."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.name}@{LATEST if self.version is None else f'v{self.version}'}"


def parse_version(text: str) -> int | None:
    """``v3``/``3`` → 3; ``latest`` → None.

    Raises:
        InvalidInput: anything else.
    """
    if text == LATEST:
        return None
    match = _VERSION_RE.fullmatch(text)
    if match is None:
        raise InvalidInput(
            f"invalid dataset version {text!r}: expected v<N> (like v2), <N> or 'latest'"
        )
    return int(match.group(1))


def parse_ref(text: str) -> DatasetRef:
    """Parse ``name``, ``name@vN``, ``name@N`` or ``name@latest``.

    Raises:
        InvalidInput: an invalid name or version; the message names the reference.
    """
    if not isinstance(text, str) or not text:
        raise InvalidInput("invalid dataset reference '': expected name@vN or name@latest")
    name, sep, version = text.partition("@")
    if sep and "@" in version:
        raise InvalidInput(f"invalid dataset reference {text!r}: more than one '@'")
    validate_dataset_name(name)
    return DatasetRef(name, parse_version(version) if sep else None)


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


def changed_while_added(path: Path) -> InvalidInput:
    """The error for a file that changed between being scanned, hashed and sent."""
    return InvalidInput(f"{path}: the file changed while it was being added; add it again")
