"""The registry side of the SDK: ``my.log_model``, ``my.load_model``, ``my.set_alias``.

``load_model`` accepts ``models:/<name>@<alias>``, ``models:/<name>/<version>``,
``models:/<name>/latest`` and ``runs:/<run_id>/<path>``. Files are downloaded into
``$MODELYARD_HOME/cache/models/<package digest>/``, each checked against the digest the
registry recorded, and the package is verified again before anything is unpickled.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import InvalidInput
from modelyard.core.models import AliasChange, ModelVersion
from modelyard.registry.cache import (
    MANIFEST_FILE,
    cached_package,
    expected_files,
    materialize,
    parse_models_uri,
)
from modelyard.tracking import fluent

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient
    from modelyard.models import LoadedModel, ModelInput

_RUNS_URI = re.compile(r"^runs:/(?P<run>[0-9a-f]{32})/(?P<path>.+)$")


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    artifact_path: str
    flavor: str
    version: ModelVersion | None

    @property
    def uri(self) -> str:
        return f"runs:/{self.run_id}/{self.artifact_path}"


def _client_and_project() -> tuple[ModelyardClient, str]:
    session = fluent._get()
    return session.client, session.settings.project


def log_model(
    model: object,
    name: str = "model",
    *,
    input_example: ModelInput | None = None,
    registered_model_name: str | None = None,
    flavor: str | None = None,
) -> LoggedModel:
    """Package ``model``, upload it to the active run under ``name``, optionally register.

    The package (see ``modelyard.models.save_model``) records its flavor, the signature
    inferred from ``input_example``, library versions and the sha256 of every file.
    """
    from modelyard.models import save_model

    active = fluent._run_or_start()
    client, project = _client_and_project()
    prefix = name.strip("/")
    with tempfile.TemporaryDirectory(prefix="modelyard-log-model-") as tmp:
        package = Path(tmp) / "package"
        manifest = save_model(
            model, package, flavor=flavor, input_example=input_example, source_run=active.id
        )
        upload_package(client, active.id, package, prefix)
    version = (
        client.register_version(project, registered_model_name, active.id, prefix)
        if registered_model_name
        else None
    )
    return LoggedModel(active.id, prefix, manifest.flavor, version)


def upload_package(client: ModelyardClient, run_id: str, package: Path, prefix: str) -> None:
    """Upload every file of a package directory to a run, under ``prefix/``."""
    for file in sorted(p for p in package.rglob("*") if p.is_file()):
        client.log_run_artifact(run_id, f"{prefix}/{file.relative_to(package).as_posix()}", file)


def fetch_version(client: ModelyardClient, version: ModelVersion, cache_root: Path) -> Path:
    """The version's package directory in the cache, downloaded (and verified) if needed."""
    return cached_package(
        version, cache_root, lambda entry, dest: client.download_version_file(version, entry, dest)
    )


def register_model(model_uri: str, name: str) -> ModelVersion:
    """Register the model a run logged (``runs:/<run_id>/<path>``) as the next version."""
    match = _RUNS_URI.match(model_uri)
    if match is None:
        raise InvalidInput(f"register_model needs a runs:/<run_id>/<path> URI, got {model_uri!r}")
    client, project = _client_and_project()
    return client.register_version(project, name, match["run"], match["path"])


def set_alias(name: str, alias: str, version: int) -> AliasChange:
    """Point ``alias`` of model ``name`` at ``version`` (recorded in the alias history)."""
    client, project = _client_and_project()
    return client.set_alias(project, name, alias, version)


def get_version(model_uri: str) -> ModelVersion:
    """The registered version a ``models:/`` URI names."""
    name, ref = parse_models_uri(model_uri)
    client, project = _client_and_project()
    return client.get_version(project, name, ref)


def load_model(model_uri: str) -> LoadedModel:
    """Load a registered or logged model; every file is verified before unpickling."""
    from modelyard.models import load_model as load_package

    client, _ = _client_and_project()
    cache = fluent._get().settings.home / "cache" / "models"
    if model_uri.startswith("models:/"):
        version = get_version(model_uri)
        return load_package(
            fetch_version(client, version, cache), expected_files=expected_files(version)
        )
    match = _RUNS_URI.match(model_uri)
    if match is None:
        raise InvalidInput(f"unsupported model URI {model_uri!r}: use models:/ or runs:/")
    run_id, prefix = match["run"], match["path"].strip("/") + "/"
    listed = [e for e in client.list_run_artifacts(run_id) if e.path.startswith(prefix)]
    manifest = next((e for e in listed if e.path == prefix + MANIFEST_FILE), None)
    if manifest is None:
        raise InvalidInput(f"{model_uri} has no {MANIFEST_FILE}: not a model package")
    files = [ArtifactEntry(e.path[len(prefix) :], e.digest, e.size) for e in listed]
    key = manifest.digest

    def fetch(entry: ArtifactEntry, dest: Path) -> None:
        client.download_run_artifact(
            run_id, ArtifactEntry(prefix + entry.path, entry.digest, entry.size), dest
        )

    target = cache / key
    if not target.is_dir():
        materialize(files, target, fetch)
    expected = {f.path: f.digest for f in files if f.path != MANIFEST_FILE}
    return load_package(target, expected_files=expected)
