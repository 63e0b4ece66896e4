"""REST calls of the dataset and lineage APIs, decoded into frozen entities."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from modelyard.artifacts import (
    BATCH_CONTENT_TYPE,
    BatchEntry,
    BlobInfo,
    encode_header,
    validate_logical_path,
)
from modelyard.core.datasets import (
    Dataset,
    DatasetRef,
    DatasetVersion,
    changed_while_added,
    parse_ref,
)
from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import NotFound

DIGEST_HEADER = "x-modelyard-digest"
MISSING_BATCH = 10_000
UPLOAD_CHUNK = 1 << 20


class _Requester(Protocol):
    _http: httpx.Client

    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response: ...

    def download_to(
        self, url: str, dest: Path, expected_digest: str | None = None
    ) -> ArtifactEntry: ...


def _project_url(project: str) -> str:
    return f"/api/v1/projects/{quote(project, safe='')}"


def _version_url(project: str, ref: DatasetRef) -> str:
    version = "latest" if ref.version is None else f"v{ref.version}"
    return f"{_project_url(project)}/datasets/{quote(ref.name, safe='')}/versions/{version}"


def dataset_of(d: dict[str, Any]) -> Dataset:
    return Dataset(
        d["name"], d["project"], d["description"], d["created_at_ms"], d.get("latest_version")
    )


def dataset_version_of(d: dict[str, Any]) -> DatasetVersion:
    return DatasetVersion(
        dataset=d["dataset"],
        project=d["project"],
        version=int(d["version"]),
        manifest_digest=d["manifest_digest"],
        total_size=int(d["total_size"]),
        file_count=int(d["file_count"]),
        message=d["message"],
        user=d["user"],
        created_at_ms=int(d["created_at_ms"]),
        source_run_id=d.get("source_run_id"),
        files=tuple(ArtifactEntry(f["path"], f["digest"], f["size"]) for f in d.get("files", [])),
        profile=dict(d.get("profile") or {}),
    )


def _exact_chunks(path: Path, size: int) -> Iterator[bytes]:
    """The ``size`` bytes of a file in chunks; one that shrank since it was hashed fails.

    (One that grew, or changed in place, sends bytes that the server's digest check
    refuses.)
    """
    with path.open("rb", buffering=0) as fh:
        left = size
        while left:
            chunk = fh.read(min(UPLOAD_CHUNK, left))
            if not chunk:
                raise changed_while_added(path)
            left -= len(chunk)
            yield chunk


def _coalesced(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """Join small pieces into chunks of about UPLOAD_CHUNK bytes (fewer, bigger sends)."""
    pending: list[bytes] = []
    pending_bytes = 0
    for piece in pieces:
        if pending and pending_bytes + len(piece) > UPLOAD_CHUNK:
            yield b"".join(pending) if len(pending) > 1 else pending[0]
            pending, pending_bytes = [], 0
        pending.append(piece)
        pending_bytes += len(piece)
    if pending:
        yield b"".join(pending) if len(pending) > 1 else pending[0]


class DataCalls:
    """Mixed into ModelyardClient: blobs, datasets, versions, diffs and lineage."""

    def blob_location(self: _Requester, project: str) -> tuple[str, str] | None:
        """``(folder, store id)`` when the server's blob store is a plain ``file://``
        folder a client on its machine may write into, else ``None`` (an older server
        without the route counts as ``None``)."""
        try:
            found = self.request("GET", f"{_project_url(project)}/blobs/location")
        except NotFound:
            return None
        if found.get("kind") != "file" or not found.get("root") or not found.get("store_id"):
            return None
        return str(found["root"]), str(found["store_id"])

    def missing_blobs(self: _Requester, project: str, digests: Sequence[str]) -> list[str]:
        """Which of ``digests`` the server does not hold yet."""
        missing: list[str] = []
        url = f"{_project_url(project)}/blobs/missing"
        for start in range(0, len(digests), MISSING_BATCH):
            batch = list(digests[start : start + MISSING_BATCH])
            missing.extend(self.request("POST", url, json={"digests": batch})["missing"])
        return missing

    def put_blob(
        self: _Requester, project: str, digest: str, source: Path, size: int | None = None
    ) -> BlobInfo:
        """Stream a file whose sha256 the caller already knows; the server verifies it.

        ``size`` is the file's size when it was hashed (default: its size now).
        """
        size = source.stat().st_size if size is None else size
        request = self._http.build_request(
            "PUT",
            f"{_project_url(project)}/blobs/{digest}",
            content=_exact_chunks(source, size),
            headers={DIGEST_HEADER: digest, "content-length": str(size)},
        )
        data = self._send(request).json()
        return BlobInfo(data["digest"], int(data["size"]))

    def put_blob_hashing(
        self: _Requester, project: str, source: Path, size: int
    ) -> tuple[BlobInfo, str]:
        """Upload a file in the same pass as it is hashed: ``(what the server stored,
        the file's sha256 as read here)``. The caller compares the two digests."""
        digest = hashlib.sha256()

        def hashed() -> Iterator[bytes]:
            for chunk in _exact_chunks(source, size):
                digest.update(chunk)
                yield chunk

        request = self._http.build_request(
            "POST",
            f"{_project_url(project)}/blobs",
            content=hashed(),
            headers={"content-length": str(size)},
        )
        data = self._send(request).json()
        return BlobInfo(data["digest"], int(data["size"])), digest.hexdigest()

    def put_blob_batch(
        self: _Requester, project: str, blobs: Sequence[tuple[str, Path, int]]
    ) -> list[BlobInfo]:
        """Upload many small files ``(digest, path, size)`` in one request; verified
        by the server blob by blob.

        The body is streamed in chunks of about UPLOAD_CHUNK bytes, never built whole:
        the HTTP stack copies what is left of a buffer after every partial ``send``,
        which for a 32 MiB body costs more than hashing it.
        """
        entries = [BatchEntry(digest, size) for digest, _, size in blobs]
        header = encode_header(entries)
        body = _coalesced(
            itertools.chain([header], *(_exact_chunks(path, size) for _, path, size in blobs))
        )
        length = len(header) + sum(size for _, _, size in blobs)
        data = self.request(
            "POST",
            f"{_project_url(project)}/blobs/batch",
            content=body,
            headers={"content-type": BATCH_CONTENT_TYPE, "content-length": str(length)},
        )
        return [BlobInfo(b["digest"], int(b["size"])) for b in data["stored"]]

    def commit_dataset_version(
        self: _Requester,
        project: str,
        name: str,
        files: Sequence[ArtifactEntry],
        *,
        message: str = "",
        profile: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Commit uploaded files as a version; False when identical to the latest."""
        body: dict[str, Any] = {
            "files": [{"path": f.path, "digest": f.digest, "size": f.size} for f in files],
            "message": message,
            "profile": profile,
        }
        if run_id is not None:
            body["run_id"] = run_id
        url = f"{_project_url(project)}/datasets/{quote(name, safe='')}/versions"
        data = self.request("POST", url, json=body)
        return dataset_version_of(data), bool(data.get("created"))

    def list_datasets(self: _Requester, project: str) -> list[Dataset]:
        return [dataset_of(d) for d in self.request("GET", f"{_project_url(project)}/datasets")]

    def list_dataset_versions(self: _Requester, project: str, name: str) -> list[DatasetVersion]:
        url = f"{_project_url(project)}/datasets/{quote(name, safe='')}/versions"
        return [dataset_version_of(d) for d in self.request("GET", url)]

    def get_dataset_version(self: _Requester, project: str, ref: str) -> DatasetVersion:
        """A version (``name@vN``, ``name@latest`` or ``name``) with files and profile."""
        return dataset_version_of(self.request("GET", _version_url(project, parse_ref(ref))))

    def diff_datasets(self: _Requester, project: str, old: str, new: str) -> dict[str, Any]:
        """The diff document of ``old`` → ``new`` (see ``modelyard.data.diff``)."""
        parse_ref(old)
        parse_ref(new)
        params = {"old": old, "new": new}
        result: dict[str, Any] = self.request(
            "GET", f"{_project_url(project)}/dataset-diff", params=params
        )
        return result

    def download_dataset_file(
        self: _Requester, version: DatasetVersion, entry: ArtifactEntry, dest: Path
    ) -> ArtifactEntry:
        """Download one file atomically; refused unless it has the recorded digest."""
        ref = DatasetRef(version.dataset, version.version)
        url = (
            f"{_version_url(version.project, ref)}/files/{quote(validate_logical_path(entry.path))}"
        )
        return self.download_to(url, dest, entry.digest)

    def record_dataset_input(
        self: _Requester, project: str, ref: str, run_id: str
    ) -> DatasetVersion:
        """Record that ``run_id`` read ``ref``: an ``input`` edge of the lineage graph."""
        url = f"{_version_url(project, parse_ref(ref))}/inputs"
        return dataset_version_of(self.request("POST", url, json={"run_id": run_id}))

    def lineage(
        self: _Requester,
        project: str,
        kind: str,
        ident: str,
        *,
        direction: str = "both",
        depth: int = 10,
    ) -> dict[str, Any]:
        """The lineage graph around a node (``dataset``/``run``/``model``/``deployment``)."""
        url = f"{_project_url(project)}/lineage/{quote(kind, safe='')}/{quote(ident, safe='/')}"
        result: dict[str, Any] = self.request(
            "GET", url, params={"direction": direction, "depth": depth}
        )
        return result
