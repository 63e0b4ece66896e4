"""The local package cache: ``<cache>/<package digest>/``, written whole or not at all.

Used by the SDK (downloads over HTTP) and by the deployment controller (reads the blob
store directly); both verify every file's digest while fetching it, and the model loader
verifies the package again before anything is unpickled.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import InvalidInput
from modelyard.core.models import ModelVersion

MANIFEST_FILE = "modelyard.yaml"
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<ref>[^/]+))$")


def parse_models_uri(model_uri: str) -> tuple[str, str]:
    """``models:/churn@production`` → ``("churn", "production")``; ``models:/churn/3`` → 3.

    Raises:
        InvalidInput: not a ``models:/`` URI.
    """
    match = _MODELS_URI.match(model_uri)
    if match is None:
        raise InvalidInput(
            f"expected models:/<name>@<alias> or models:/<name>/<version>, got {model_uri!r}"
        )
    return match["name"], match["alias"] or match["ref"]


def expected_files(version: ModelVersion) -> dict[str, str]:
    """The digests the loader must find for a version's files (the manifest excluded)."""
    return {f.path: f.digest for f in version.files if f.path != MANIFEST_FILE}


def cached_package(
    version: ModelVersion, cache_root: Path, fetch: Callable[[ArtifactEntry, Path], object]
) -> Path:
    """The version's package directory in the cache, fetched with ``fetch`` if missing."""
    target = cache_root / version.package_digest
    if not target.is_dir():
        materialize(list(version.files), target, fetch)
    return target


def materialize(
    files: list[ArtifactEntry], target: Path, fetch: Callable[[ArtifactEntry, Path], object]
) -> None:
    """Fetch every file into a temporary directory, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for entry in files:
            dest = tmp / entry.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            fetch(entry, dest)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # a concurrent loader may have won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
