"""The digest that identifies a version's content (light: no store, no pyarrow)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from modelyard.artifacts import Manifest, ManifestEntry
from modelyard.core.entities import ArtifactEntry


def manifest_digest(files: Sequence[ArtifactEntry]) -> str:
    """The SHA-256 of the canonical manifest of ``files`` (identical files, same digest).

    Raises:
        InvalidInput: a path, digest or size is invalid, or a path repeats.
    """
    manifest = Manifest.from_entries(ManifestEntry(f.path, f.digest, f.size) for f in files)
    return hashlib.sha256(manifest.to_json()).hexdigest()
