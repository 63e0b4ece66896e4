"""Registry entities: registered models, versions, aliases. Times are epoch ms.

A version's ``stage`` is MLflow's (``None``, ``Staging``, ``Production``, ``Archived``);
``updated_at_ms`` is ``None`` until the version is first changed after its creation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelyard.core.entities import ArtifactEntry


@dataclass(frozen=True)
class ModelVersion:
    model: str
    project: str
    version: int
    source_run_id: str | None
    source_uri: str
    flavor: str
    signature_json: str
    package_digest: str
    status: str
    description: str
    user: str
    created_at_ms: int
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    files: tuple[ArtifactEntry, ...] = ()
    stage: str = "None"
    updated_at_ms: int | None = None


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    project: str
    description: str
    created_at_ms: int
    updated_at_ms: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    latest_version: int | None = None


@dataclass(frozen=True)
class AliasChange:
    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    user: str
    timestamp_ms: int


def version_namespace(model_id: int, version: int) -> str:
    """The artifact namespace holding a version's files (immutable once written)."""
    return f"model-version:{model_id}:{version}"
