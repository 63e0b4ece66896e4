"""Manifests: the map from logical paths to blobs that makes a directory of artifacts.

A manifest has one canonical JSON form, so two manifests with the same entries have
the same bytes and therefore the same digest; it can itself be stored as a blob.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from modelyard.artifacts._base import validate_digest
from modelyard.artifacts._paths import validate_logical_path
from modelyard.core.errors import InvalidInput

MANIFEST_VERSION = 1
_ENTRY_KEYS = frozenset({"path", "digest", "size"})
_TOP_KEYS = frozenset({"version", "entries"})


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a manifest: its logical path and the blob that holds its content.

    ``path`` is normalized on construction (see ``validate_logical_path``).

    Raises:
        InvalidInput: the path or digest is invalid, or the size is not an integer >= 0.
    """

    path: str
    digest: str
    size: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", validate_logical_path(self.path))
        validate_digest(self.digest)
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise InvalidInput(
                f"invalid size {self.size!r} for artifact {self.path!r}: must be an integer >= 0"
            )


@dataclass(frozen=True)
class Manifest:
    """An immutable set of entries with unique paths, kept sorted by path.

    A path may not be both a file and a directory (``a`` next to ``a/b``), because the
    manifest could then not be written out to a directory.

    Raises:
        InvalidInput: two entries share a path, or one path is a parent of another.
    """

    entries: tuple[ManifestEntry, ...] = ()

    def __post_init__(self) -> None:
        entries = tuple(sorted(self.entries, key=lambda e: e.path))
        object.__setattr__(self, "entries", entries)
        for before, after in itertools.pairwise(entries):
            if before.path == after.path:
                raise InvalidInput(f"invalid manifest: path {after.path!r} appears more than once")
        files = {e.path for e in entries}
        for entry in entries:
            parts = entry.path.split("/")
            for i in range(1, len(parts)):
                parent = "/".join(parts[:i])
                if parent in files:
                    raise InvalidInput(
                        f"invalid manifest: {parent!r} is a file and also the directory "
                        f"of {entry.path!r}"
                    )

    @classmethod
    def from_entries(cls, entries: Iterable[ManifestEntry]) -> Manifest:
        """Build a manifest from entries in any order."""
        return cls(tuple(entries))

    @property
    def total_size(self) -> int:
        """The sum of the entries' sizes, in bytes."""
        return sum(e.size for e in self.entries)

    def get(self, path: str) -> ManifestEntry | None:
        """The entry at ``path`` (normalized first), or None if there is none.

        Raises:
            InvalidInput: ``path`` is not a valid logical path.
        """
        path = validate_logical_path(path)
        i = bisect.bisect_left(self.entries, path, key=lambda e: e.path)
        if i < len(self.entries) and self.entries[i].path == path:
            return self.entries[i]
        return None

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def to_json(self) -> bytes:
        """The canonical UTF-8 JSON form: sorted keys, no insignificant whitespace."""
        doc = {
            "version": MANIFEST_VERSION,
            "entries": [{"path": e.path, "digest": e.digest, "size": e.size} for e in self],
        }
        return json.dumps(
            doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse a manifest written by :meth:`to_json`.

        Raises:
            InvalidInput: ``data`` is not UTF-8 JSON of a valid manifest.
        """
        try:
            doc = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, TypeError) as exc:
            raise InvalidInput(f"invalid manifest: not UTF-8 JSON ({exc})") from exc
        if not isinstance(doc, dict) or set(doc) != _TOP_KEYS:
            raise InvalidInput(
                "invalid manifest: expected an object with exactly the keys 'entries', 'version'"
            )
        if doc["version"] != MANIFEST_VERSION or isinstance(doc["version"], bool):
            raise InvalidInput(f"invalid manifest: unsupported version {doc['version']!r}")
        raw_entries = doc["entries"]
        if not isinstance(raw_entries, list):
            raise InvalidInput("invalid manifest: 'entries' must be a list")
        return cls(tuple(_parse_entry(i, raw) for i, raw in enumerate(raw_entries)))


def _parse_entry(index: int, raw: Any) -> ManifestEntry:
    if not isinstance(raw, dict) or set(raw) != _ENTRY_KEYS:
        raise InvalidInput(
            f"invalid manifest: entry {index} must be an object with exactly the keys "
            "'digest', 'path', 'size'"
        )
    if not isinstance(raw["path"], str) or not isinstance(raw["digest"], str):
        raise InvalidInput(f"invalid manifest: entry {index} has a non-string path or digest")
    entry = ManifestEntry(path=raw["path"], digest=raw["digest"], size=raw["size"])
    if entry.path != raw["path"]:
        raise InvalidInput(
            f"invalid manifest: entry {index} path {raw['path']!r} is not normalized"
        )
    return entry
