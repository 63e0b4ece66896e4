"""Dataset rules on the server: permissions, manifest checks, commits, diffs, inputs.

Files reach the blob store before the version is committed (``missing_blobs`` tells a
client what to upload); ``commit_version`` refuses a manifest that names a blob the store
does not hold, so a committed version is always complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelyard.artifacts import BlobStore, FileBlobStore, validate_digest
from modelyard.artifacts.placement import store_id
from modelyard.auth import Principal
from modelyard.core.datasets import (
    Dataset,
    DatasetRef,
    DatasetSummary,
    DatasetVersion,
    VersionSummary,
    parse_ref,
    validate_dataset_name,
)
from modelyard.core.entities import ArtifactEntry, Role
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.core.lineage import Edge, EdgeType, NodeKey, NodeKind
from modelyard.data._manifest import manifest_digest
from modelyard.data.diff import DatasetDiff, diff_versions
from modelyard.store import (
    DataRepository,
    LineageRepository,
    TrackingRepository,
    dataset_version_namespace,
)

MAX_DIGESTS_PER_CALL = 10_000
MAX_MESSAGE_CHARS = 4096


def validate_profile(profile: Any) -> dict[str, Any]:
    """Check the outer shape of a profile document (docs/data.md)."""
    if profile is None:
        return {}
    if not isinstance(profile, dict):
        raise InvalidInput("profile must be a JSON object")
    if profile and (
        not isinstance(profile.get("format_version"), int)
        or not isinstance(profile.get("tables"), dict)
    ):
        raise InvalidInput("profile must have an integer 'format_version' and a 'tables' object")
    return profile


class DataService:
    """Datasets and versions, checked against the caller's roles."""

    def __init__(
        self,
        repo: DataRepository,
        lineage: LineageRepository,
        tracking: TrackingRepository,
        blobs: BlobStore,
    ) -> None:
        self._repo = repo
        self._lineage = lineage
        self._tracking = tracking
        self._blobs = blobs

    def missing_blobs(self, caller: Principal, project: str, digests: Sequence[str]) -> list[str]:
        """The digests among ``digests`` the blob store lacks, in request order, once each."""
        caller.require(project, Role.EDITOR)
        if len(digests) > MAX_DIGESTS_PER_CALL:
            raise InvalidInput(f"digests: at most {MAX_DIGESTS_PER_CALL} per call")
        unique = dict.fromkeys(validate_digest(d) for d in digests)
        return [d for d in unique if not self._blobs.exists(d)]

    def blob_location(self, caller: Principal, project: str) -> tuple[str, str] | None:
        """``(folder, store id)`` of a plain ``file://`` blob store, which a client on this
        machine may write into directly (see :mod:`modelyard.artifacts.placement`);
        ``None`` for any other store (S3, encrypted), which takes uploads only."""
        caller.require(project, Role.EDITOR)
        if not isinstance(self._blobs, FileBlobStore):
            return None
        return str(self._blobs.root), store_id(self._blobs.root)

    def commit_version(
        self,
        caller: Principal,
        project: str,
        name: str,
        files: Sequence[ArtifactEntry],
        *,
        message: str = "",
        profile: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Commit ``files`` as the next version of ``name`` (created on first use).

        Returns:
            The version and whether it is new; content identical to the latest version
            returns that version and False.

        Raises:
            InvalidInput: a bad name, path, digest or profile, no files, or a file whose
                blob is not uploaded or has another size.
            PermissionDenied: the caller is not an editor of ``project`` (and of the
                run's project when ``run_id`` is given).
        """
        caller.require(project, Role.EDITOR)
        validate_dataset_name(name)
        if not files:
            raise InvalidInput("files: a dataset version needs at least one file")
        if len(message) > MAX_MESSAGE_CHARS:
            raise InvalidInput(f"message: at most {MAX_MESSAGE_CHARS} characters")
        digest = manifest_digest(files)
        for f in files:
            self._check_blob(f)
        if run_id is not None:
            caller.require(self._tracking.project_of_run(run_id), Role.EDITOR)
        return self._repo.commit_version(
            project, name, files, manifest_digest=digest, user=caller.user, message=message,
            profile=validate_profile(profile), source_run_id=run_id,
        )  # fmt: skip

    def _check_blob(self, f: ArtifactEntry) -> None:
        try:
            size = self._blobs.size(f.digest)
        except NotFound:
            raise InvalidInput(
                f"file {f.path!r}: its content ({f.digest[:12]}…) was not uploaded; "
                "upload missing blobs before committing"
            ) from None
        if size != f.size:
            raise InvalidInput(f"file {f.path!r}: size {f.size} does not match the blob ({size})")

    def list_datasets(self, caller: Principal, project: str) -> list[Dataset]:
        caller.require(project, Role.VIEWER)
        return self._repo.list_datasets(project)

    def list_versions(self, caller: Principal, project: str, name: str) -> list[DatasetVersion]:
        caller.require(project, Role.VIEWER)
        return self._repo.list_versions(project, validate_dataset_name(name))

    def get_version(
        self,
        caller: Principal,
        project: str,
        ref: str | DatasetRef,
        *,
        file_offset: int = 0,
        file_limit: int | None = None,
    ) -> DatasetVersion:
        """A version with its files and profile, by ``name@vN`` / ``name@latest``
        (``file_offset``/``file_limit``: a window of its files, for a page)."""
        caller.require(project, Role.VIEWER)
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        return self._repo.get_version(
            project, parsed.name, parsed.version, file_offset=file_offset, file_limit=file_limit
        )

    def dataset_summaries(
        self,
        caller: Principal,
        project: str,
        *,
        offset: int = 0,
        limit: int = 100,
        recent: bool = False,
    ) -> list[DatasetSummary]:
        """A page of datasets with version counts and their latest version (web UI)."""
        caller.require(project, Role.VIEWER)
        return self._repo.dataset_summaries(project, offset=offset, limit=limit, recent=recent)

    def version_summaries(
        self, caller: Principal, project: str, name: str, *, offset: int = 0, limit: int = 100
    ) -> list[VersionSummary]:
        """A page of a dataset's versions, newest first, with their profiled rows."""
        caller.require(project, Role.VIEWER)
        return self._repo.version_summaries(
            project, validate_dataset_name(name), offset=offset, limit=limit
        )

    def diff(
        self, caller: Principal, project: str, old_ref: str, new_ref: str
    ) -> tuple[DatasetVersion, DatasetVersion, DatasetDiff]:
        """Both versions and what changed from ``old_ref`` to ``new_ref``."""
        old = self.get_version(caller, project, old_ref)
        new = self.get_version(caller, project, new_ref)
        return old, new, diff_versions(old.files, new.files, old.profile, new.profile)

    def file_namespace(
        self, caller: Principal, project: str, ref: str, path: str
    ) -> tuple[str, ArtifactEntry]:
        """Where a version's file is indexed, for streaming it out."""
        caller.require(project, Role.VIEWER)
        parsed = parse_ref(ref)
        version = self._repo.get_version(project, parsed.name, parsed.version)
        entry = next((f for f in version.files if f.path == path), None)
        if entry is None:
            raise NotFound(f"{version.ref} has no file {path!r}")
        version_id, _ = self._repo.version_id(project, parsed.name, version.version)
        return dataset_version_namespace(version_id), entry

    def record_input(
        self, caller: Principal, project: str, ref: str, run_id: str
    ) -> DatasetVersion:
        """Record that run ``run_id`` read the version ``ref`` (an ``input`` edge)."""
        caller.require(project, Role.VIEWER)
        caller.require(self._tracking.project_of_run(run_id), Role.EDITOR)
        parsed = parse_ref(ref)
        version_id, number = self._repo.version_id(project, parsed.name, parsed.version)
        self._lineage.add_edge(
            Edge(
                NodeKey(NodeKind.DATASET_VERSION, str(version_id)),
                NodeKey(NodeKind.RUN, run_id),
                EdgeType.INPUT,
            )
        )
        return self._repo.get_version(project, parsed.name, number)
