"""Registry rules: names, permissions, and registering a version from a run's model package."""

from __future__ import annotations

import json
import re
from typing import Any

from modelyard.artifacts import BlobStore
from modelyard.auth import Principal
from modelyard.core.entities import ArtifactEntry, Role
from modelyard.core.errors import IntegrityError, InvalidInput
from modelyard.core.models import AliasChange, ModelVersion, RegisteredModel
from modelyard.core.search import decode_page_token, encode_page_token
from modelyard.core.tracking import run_artifact_namespace
from modelyard.store import ArtifactIndexRepository, RegistryRepository, TrackingRepository
from modelyard.store.registry_pages import STAGES, ModelHit, VersionPage
from modelyard.store.registry_search import (
    DEFAULT_VERSION_ORDER,
    check_max_results,
    parse_filter,
    parse_order_by,
)

MANIFEST_FILE = "modelyard.yaml"
_MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][\w.\- ]{0,255}$")
_ALIAS_RE = re.compile(r"^[A-Za-z_][\w-]{0,127}$")
_RESERVED_ALIAS_RE = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
MAX_TAG_KEY_LENGTH = 250
MAX_TAG_VALUE_LENGTH = 100_000


def validate_model_name(name: str) -> str:
    if not _MODEL_NAME_RE.match(name):
        raise InvalidInput(
            f"model name {name!r} is invalid: 1-256 letters, digits, spaces and _ . -, "
            "starting with a letter or digit"
        )
    return name


def validate_alias(alias: str) -> str:
    if not _ALIAS_RE.match(alias):
        raise InvalidInput(
            f"alias {alias!r} is invalid: up to 128 letters, digits, _ and -, "
            "starting with a letter or _"
        )
    if _RESERVED_ALIAS_RE.match(alias):
        raise InvalidInput(f"alias {alias!r} is reserved (latest and v<N> name versions)")
    return alias


def validate_tag(key: str, value: str) -> tuple[str, str]:
    """A registry tag as MLflow bounds it: a key of 1-250 characters, a value up to 100 000."""
    if not key.strip():
        raise InvalidInput("Missing value for required parameter 'key'")
    if len(key) > MAX_TAG_KEY_LENGTH:
        raise InvalidInput(f"tag key {key[:40]!r}… exceeds {MAX_TAG_KEY_LENGTH} characters")
    if len(value) > MAX_TAG_VALUE_LENGTH:
        raise InvalidInput(f"the value of tag {key!r} exceeds {MAX_TAG_VALUE_LENGTH} characters")
    return key, value


def canonical_stage(stage: str) -> str:
    """MLflow's spelling of a stage, matched without regard to case.

    Raises:
        InvalidInput: not one of None, Staging, Production, Archived.
    """
    for known in STAGES:
        if stage.strip().lower() == known.lower():
            return known
    raise InvalidInput(
        f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES)}."
    )


def package_files(
    entries: list[ArtifactEntry], prefix: str, manifest: dict[str, Any]
) -> list[ArtifactEntry]:
    """The files of a model package under ``prefix``, checked against its manifest.

    Raises:
        InvalidInput: the manifest is malformed, a listed file is missing, or a file is
            present that the manifest does not list.
        IntegrityError: a file's stored digest or size differs from the manifest.
    """
    listed = manifest.get("files")
    if not isinstance(listed, list):
        raise InvalidInput(f"{MANIFEST_FILE} has no 'files' list")
    present = {e.path[len(prefix) :]: e for e in entries if e.path.startswith(prefix)}
    wanted: dict[str, tuple[str, int]] = {}
    for item in listed:
        if not isinstance(item, dict) or not {"path", "sha256", "size"} <= item.keys():
            raise InvalidInput(f"{MANIFEST_FILE}: every file needs path, sha256 and size")
        wanted[str(item["path"])] = (str(item["sha256"]), int(item["size"]))
    out = [ArtifactEntry(MANIFEST_FILE, present[MANIFEST_FILE].digest, present[MANIFEST_FILE].size)]
    for path, (digest, size) in sorted(wanted.items()):
        entry = present.get(path)
        if entry is None:
            raise InvalidInput(f"model file {path!r} is listed in {MANIFEST_FILE} but missing")
        if (entry.digest, entry.size) != (digest, size):
            raise IntegrityError(
                f"model file {path!r} does not match its digest in {MANIFEST_FILE}"
            )
        out.append(ArtifactEntry(path, entry.digest, entry.size))
    extra = sorted(set(present) - set(wanted) - {MANIFEST_FILE})
    if extra:
        raise InvalidInput(
            f"file {extra[0]!r} is in the model directory but not in {MANIFEST_FILE}"
        )
    return out


class RegistryService:
    def __init__(
        self,
        repo: RegistryRepository,
        tracking: TrackingRepository,
        artifacts: ArtifactIndexRepository,
        blobs: BlobStore,
    ) -> None:
        self._repo = repo
        self._tracking = tracking
        self._artifacts = artifacts
        self._blobs = blobs

    # --- models -------------------------------------------------------------------------

    def create_model(
        self,
        caller: Principal,
        project: str,
        name: str,
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> RegisteredModel:
        caller.require(project, Role.EDITOR)
        return self._repo.create_model(project, validate_model_name(name), description, tags)

    def get_model(self, caller: Principal, project: str, name: str) -> RegisteredModel:
        caller.require(project, Role.VIEWER)
        return self._repo.get_model(project, name)

    def list_models(self, caller: Principal, project: str) -> list[RegisteredModel]:
        caller.require(project, Role.VIEWER)
        return self._repo.list_models(project)

    def update_model(
        self, caller: Principal, project: str, name: str, description: str
    ) -> RegisteredModel:
        caller.require(project, Role.EDITOR)
        return self._repo.update_model(project, name, description)

    def rename_model(
        self, caller: Principal, project: str, name: str, new_name: str
    ) -> RegisteredModel:
        """Rename a model (refused while a live deployment serves it)."""
        caller.require(project, Role.EDITOR)
        return self._repo.rename_model(project, name, validate_model_name(new_name))

    def delete_model(self, caller: Principal, project: str, name: str) -> None:
        """Delete a model and all its versions (refused while a live deployment serves it)."""
        caller.require(project, Role.ADMIN)
        self._repo.delete_model(project, name)

    def set_model_tag(
        self, caller: Principal, project: str, name: str, key: str, value: str
    ) -> None:
        caller.require(project, Role.EDITOR)
        self._repo.set_model_tag(project, name, *validate_tag(key, value))

    def delete_model_tag(self, caller: Principal, project: str, name: str, key: str) -> None:
        caller.require(project, Role.EDITOR)
        self._repo.delete_model_tag(project, name, key)

    def search_models(
        self,
        caller: Principal,
        project: str,
        filter_text: str,
        order_by: list[str],
        max_results: int,
        page_token: str | None,
    ) -> tuple[list[ModelHit], str | None]:
        """One page of an MLflow ``search_registered_models``, and the next page's token.

        Raises:
            InvalidInput: a bad filter, order_by, max_results or page token.
        """
        caller.require(project, Role.VIEWER)
        clauses = parse_filter("model", filter_text)
        orders = parse_order_by("model", order_by)
        limit = check_max_results("model", max_results)
        offset = decode_page_token(page_token)
        hits, more = self._repo.search_models(project, clauses, orders, offset=offset, limit=limit)
        return hits, encode_page_token(offset + limit) if more else None

    # --- versions -----------------------------------------------------------------------

    def update_version(
        self, caller: Principal, project: str, name: str, version: int, description: str
    ) -> ModelVersion:
        caller.require(project, Role.EDITOR)
        return self._repo.update_version(project, name, version, description)

    def transition_stage(
        self,
        caller: Principal,
        project: str,
        name: str,
        version: int,
        stage: str,
        *,
        archive_existing: bool = False,
    ) -> ModelVersion:
        """Move a version to an MLflow stage; ``archive_existing`` archives the others there.

        Raises:
            InvalidInput: an unknown stage, or ``archive_existing`` for a stage other than
                Staging or Production.
        """
        caller.require(project, Role.EDITOR)
        canonical = canonical_stage(stage)
        if archive_existing and canonical not in ("Staging", "Production"):
            raise InvalidInput(
                f"Model version transition cannot archive existing model versions because "
                f"'{canonical}' is not an Active stage. Valid stages are Staging, Production"
            )
        return self._repo.transition_stage(
            project, name, version, canonical, archive_existing=archive_existing
        )

    def set_version_tag(
        self, caller: Principal, project: str, name: str, version: int, key: str, value: str
    ) -> None:
        caller.require(project, Role.EDITOR)
        self._repo.set_version_tag(project, name, version, *validate_tag(key, value))

    def delete_version_tag(
        self, caller: Principal, project: str, name: str, version: int, key: str
    ) -> None:
        caller.require(project, Role.EDITOR)
        self._repo.delete_version_tag(project, name, version, key)

    def latest_versions(
        self, caller: Principal, project: str, name: str, stages: list[str] | None = None
    ) -> tuple[ModelVersion, ...]:
        """The newest version of each stage in ``stages`` (every stage when empty)."""
        caller.require(project, Role.VIEWER)
        wanted = {canonical_stage(s) for s in stages} if stages else None
        return self._repo.latest_versions(project, name, wanted)

    def search_versions(
        self,
        caller: Principal,
        project: str,
        filter_text: str,
        order_by: list[str],
        max_results: int,
        page_token: str | None,
    ) -> tuple[list[ModelVersion], str | None]:
        """One page of an MLflow ``search_model_versions``, and the next page's token.

        Raises:
            InvalidInput: a bad filter, order_by, max_results or page token.
        """
        caller.require(project, Role.VIEWER)
        clauses = parse_filter("version", filter_text)
        orders = parse_order_by("version", order_by or list(DEFAULT_VERSION_ORDER))
        limit = check_max_results("version", max_results)
        offset = decode_page_token(page_token)
        found, more = self._repo.search_versions(
            project, clauses, orders, offset=offset, limit=limit
        )
        return found, encode_page_token(offset + limit) if more else None

    def register_from_run(
        self,
        caller: Principal,
        project: str,
        name: str,
        run_id: str,
        artifact_path: str = "model",
        *,
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> ModelVersion:
        """Register the model package a run logged under ``artifact_path``."""
        caller.require(project, Role.EDITOR)
        caller.require(self._tracking.project_of_run(run_id), Role.VIEWER)
        validate_model_name(name)
        prefix = artifact_path.strip("/") + "/" if artifact_path.strip("/") else ""
        entries = self._artifacts.list(run_artifact_namespace(run_id), prefix)
        by_path = {e.path: e for e in entries}
        manifest_entry = by_path.get(prefix + MANIFEST_FILE)
        if manifest_entry is None:
            raise InvalidInput(
                f"run {run_id} has no model at {artifact_path!r}: {MANIFEST_FILE} is missing"
            )
        manifest = self._read_manifest(manifest_entry.digest)
        files = package_files(entries, prefix, manifest)
        return self._register(
            caller,
            project,
            name,
            source_run_id=run_id,
            source_uri=f"runs:/{run_id}/{artifact_path.strip('/')}",
            manifest=manifest,
            files=files,
            description=description,
            tags=tags,
        )

    def _read_manifest(self, digest: str) -> dict[str, Any]:
        try:
            data = json.loads(self._blobs.read_bytes(digest))
        except ValueError as exc:
            raise InvalidInput(f"{MANIFEST_FILE} is not valid JSON/YAML: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("flavor"), str):
            raise InvalidInput(f"{MANIFEST_FILE} must be a mapping with a 'flavor'")
        return data

    def _register(
        self,
        caller: Principal,
        project: str,
        name: str,
        *,
        source_run_id: str | None,
        source_uri: str,
        manifest: dict[str, Any],
        files: list[ArtifactEntry],
        description: str,
        tags: dict[str, str] | None,
    ) -> ModelVersion:
        signature = manifest.get("signature")
        manifest_digest = next(f.digest for f in files if f.path == MANIFEST_FILE)
        return self._repo.create_version(
            project,
            name,
            source_run_id=source_run_id,
            source_uri=source_uri,
            flavor=str(manifest["flavor"]),
            signature_json=json.dumps(signature) if signature is not None else "",
            package_digest=manifest_digest,
            files=files,
            user=caller.user,
            description=description,
            tags=tags,
        )

    def get_version(self, caller: Principal, project: str, name: str, version: int) -> ModelVersion:
        caller.require(project, Role.VIEWER)
        return self._repo.get_version(project, name, version)

    def list_versions(self, caller: Principal, project: str, name: str) -> list[ModelVersion]:
        caller.require(project, Role.VIEWER)
        return self._repo.list_versions(project, name)

    def versions_page(
        self, caller: Principal, project: str, name: str, *, offset: int = 0, limit: int = 50
    ) -> VersionPage:
        """Versions of ``name`` newest first (without files), with their source runs' names.

        Raises:
            InvalidInput: ``offset`` below 0 or ``limit`` outside 1..1000.
        """
        caller.require(project, Role.VIEWER)
        if offset < 0 or not 1 <= limit <= 1000:
            raise InvalidInput(f"offset must be >= 0 and limit 1..1000, got {offset}, {limit}")
        return self._repo.version_page(project, name, offset=offset, limit=limit)

    def delete_version(self, caller: Principal, project: str, name: str, version: int) -> None:
        caller.require(project, Role.ADMIN)
        self._repo.delete_version(project, name, version)

    # --- aliases ------------------------------------------------------------------------

    def set_alias(
        self, caller: Principal, project: str, name: str, alias: str, version: int
    ) -> AliasChange:
        caller.require(project, Role.EDITOR)
        return self._repo.set_alias(project, name, validate_alias(alias), version, caller.user)

    def delete_alias(self, caller: Principal, project: str, name: str, alias: str) -> AliasChange:
        caller.require(project, Role.EDITOR)
        return self._repo.delete_alias(project, name, alias, caller.user)

    def resolve(self, caller: Principal, project: str, name: str, ref: str) -> ModelVersion:
        """A version by number (``3``), alias (``production``) or ``latest``."""
        caller.require(project, Role.VIEWER)
        if ref.isdigit():
            return self._repo.get_version(project, name, int(ref))
        if ref.lower() == "latest":
            model = self._repo.get_model(project, name)
            if model.latest_version is None:
                raise InvalidInput(f"model {name!r} has no versions yet")
            return self._repo.get_version(project, name, model.latest_version)
        return self._repo.version_by_alias(project, name, ref)

    def alias_history(self, caller: Principal, project: str, name: str) -> list[AliasChange]:
        caller.require(project, Role.VIEWER)
        return self._repo.alias_history(project, name)
