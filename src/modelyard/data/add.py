"""The client side of ``data add`` and ``data get``.

``add``: scan → hash (cached) → stop early if identical to the latest version → ask
which blobs the server lacks → upload those in parallel → profile tables → commit. Asking
and uploading start while later files are still being hashed (in groups of
:data:`OFFER_BYTES`), so hashing and uploading overlap instead of following each other.
A big file the hash cache does not know (new or changed, at least
:data:`ONE_PASS_BYTES`) is uploaded in the same pass as it is hashed: the server answers
the digest it computed and the add checks it against its own. That saves reading and
hashing it twice on the client; the price is that a big file whose content the server
already holds (a copy, or one rewritten identically) is sent anyway.
The commit is last and atomic, so a killed add leaves no version, and running it again
uploads only what is still missing.

``get``: download every file of a version, each verified against its recorded digest
and renamed into place only once complete.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.artifacts import MAX_BATCH_BLOBS, plan_batches
from modelyard.artifacts.placement import (
    LinkMode,
    commit_staged,
    has_blob,
    local_store,
    place,
    stage_copy,
)
from modelyard.core.datasets import (
    AddResult,
    DatasetVersion,
    changed_while_added,
    validate_dataset_name,
)
from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.data._manifest import manifest_digest
from modelyard.data._scan import LocalFile, scan, table_format
from modelyard.data.hashing import HashCache, HashReport, check_unchanged, hash_checked, hash_files

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient

UPLOAD_WORKERS = 4
# Hashed files are offered to the server in groups of this many bytes (or files): one
# `blobs/missing` request per group, made while the next files are being hashed.
OFFER_BYTES = 64 * 1024 * 1024
OFFER_FILES = MAX_BATCH_BLOBS
# New files at least this big are uploaded while they are hashed (one read, not two).
ONE_PASS_BYTES = 64 * 1024 * 1024
Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


def add_dataset(
    client: ModelyardClient,
    project: str,
    source: Path,
    name: str,
    *,
    message: str = "",
    verify: bool = False,
    cache_path: Path | None = None,
    run_id: str | None = None,
    with_profile: bool = True,
    progress: Progress = _quiet,
    direct: bool = True,
    link: bool = False,
) -> AddResult:
    """Add the file or directory ``source`` as the next version of dataset ``name``.

    Args:
        client: A connection to the server.
        project: The project the dataset lives in.
        source: A file, or a directory whose files are added recursively.
        name: The dataset name (no ``/`` or ``@``).
        message: A note kept with the version.
        verify: Rehash every file instead of trusting the stat cache.
        cache_path: The hash cache file; None disables the cache.
        run_id: Record the version as this run's output (a lineage ``output`` edge).
        with_profile: Profile CSV/Parquet files.
        progress: Called with one line per phase.
        direct: When the server's blob store is a ``file://`` folder this process can
            write (the server on this machine), place blobs there directly instead of
            uploading them (:mod:`modelyard.artifacts.placement`).
        link: With ``direct``, reflink or hard-link files into the store instead of
            copying them where the file system allows (hard-linked files become
            read-only).

    Raises:
        InvalidInput: a bad name, a missing/unreadable path, a symlink out of the tree.
    """
    validate_dataset_name(name)
    files = scan(source)
    root = _local_root(client, project) if direct else None
    if root is not None:
        progress(f"writing blobs straight into the store at {root}")
    uploader: _Uploader | _Placer = (
        _Placer(root, "link" if link else "copy")
        if root is not None
        else _Uploader(client, project)
    )
    with uploader:
        with HashCache(cache_path) if cache_path else contextlib.nullcontext() as cache:
            # One pass only with a hash cache: without one every add rereads every file,
            # and sending the big ones each time would be a waste. Placing copies in
            # the same pass always.
            one_pass = root is not None or (cache is not None and not verify)
            read = uploader.read_and_upload if one_pass else None
            report = hash_files(files, cache, verify=verify, on_hashed=uploader.offer, read=read)
        progress(f"hashed {report.hashed} file(s), {report.cached} unchanged (cache)")
        entries = [ArtifactEntry(f.logical, report.digests[f.logical], f.size) for f in files]
        latest = _latest(client, project, name)
        if latest is not None and latest.manifest_digest == manifest_digest(entries):
            uploader.finish()  # blobs of the latest version that the store lost, if any
            if run_id is not None:  # still record the run's output edge
                latest, _ = client.commit_dataset_version(
                    project, name, entries, message=message, profile=latest.profile, run_id=run_id
                )
            return uploader.result(latest, False, report)
        for f in files:  # the files taken from the cache; the others were offered already
            uploader.offer(f, report.digests[f.logical])
        uploader.flush()
        profile = None
        if with_profile and any(table_format(f.logical) for f in files):
            from modelyard.data.profile import profile_files  # pyarrow: only when profiling

            profile = profile_files(files)  # while the uploads run
        uploader.finish()
    progress(
        f"uploaded {uploader.uploaded} new blob(s), {uploader.uploaded_bytes} bytes; "
        f"{uploader.offered - uploader.uploaded} already stored"
    )
    version, created = client.commit_dataset_version(
        project, name, entries, message=message, profile=profile, run_id=run_id
    )
    return uploader.result(version, created, report)


def _local_root(client: ModelyardClient, project: str) -> Path | None:
    found = client.blob_location(project)
    return None if found is None else local_store(*found)


def _latest(client: ModelyardClient, project: str, name: str) -> DatasetVersion | None:
    try:
        return client.get_dataset_version(project, name)
    except NotFound:
        return None


class _Uploader:
    """Uploads the blobs the server lacks, starting while later files are still hashed.

    Files are offered with their digest (each digest once); every :data:`OFFER_BYTES`
    (or :data:`OFFER_FILES`) of them, one ``blobs/missing`` request asks which the server
    lacks, and those are queued on :data:`UPLOAD_WORKERS` threads: small files in
    batches, big ones one per request. A failed upload is raised by the next flush.
    """

    def __init__(self, client: ModelyardClient, project: str) -> None:
        self._client = client
        self._project = project
        self._offered: set[str] = set()
        self._group: dict[str, LocalFile] = {}
        self._group_bytes = 0
        self._pool = ThreadPoolExecutor(max_workers=UPLOAD_WORKERS)
        self._jobs: list[Future[object]] = []
        self._sent: dict[str, int] = {}  # uploaded while hashed: digest -> size
        self.uploaded = 0
        self.uploaded_bytes = 0

    @property
    def offered(self) -> int:
        """How many distinct blobs were offered."""
        return len(self._offered)

    def read_and_upload(self, f: LocalFile) -> str:
        """Hash ``f`` (in a hashing thread); a big one is uploaded in the same pass.

        Raises:
            InvalidInput: the file changed while it was read and sent.
        """
        if f.size < ONE_PASS_BYTES:
            return hash_checked(f)
        info, digest = self._client.put_blob_hashing(self._project, f.path, f.size)
        check_unchanged(f)
        if (info.digest, info.size) != (digest, f.size):
            raise changed_while_added(f.path)
        self._sent[digest] = f.size
        return digest

    def offer(self, f: LocalFile, digest: str) -> None:
        if digest in self._offered:
            return
        self._offered.add(digest)
        if digest in self._sent:  # already stored by read_and_upload
            self.uploaded += 1
            self.uploaded_bytes += self._sent[digest]
            return
        self._group[digest] = f
        self._group_bytes += f.size
        if self._group_bytes >= OFFER_BYTES or len(self._group) >= OFFER_FILES:
            self.flush()

    def flush(self) -> None:
        """Ask about the files offered since the last flush and queue what is missing."""
        self._raise_failed()
        if not self._group:
            return
        group, self._group, self._group_bytes = self._group, {}, 0
        missing = self._client.missing_blobs(self._project, list(group))
        self.uploaded += len(missing)
        self.uploaded_bytes += sum(group[d].size for d in missing)
        batches, alone = plan_batches([(d, group[d].path, group[d].size) for d in missing])
        submit = self._pool.submit
        self._jobs += [submit(self._client.put_blob_batch, self._project, b) for b in batches]
        self._jobs += [submit(self._client.put_blob, self._project, *item) for item in alone]

    def finish(self) -> None:
        """Flush, then wait for every upload; the first failure is raised."""
        self.flush()
        for job in self._jobs:
            job.result()

    def result(self, version: DatasetVersion, created: bool, report: HashReport) -> AddResult:
        return AddResult(
            version, created, self.uploaded, self.uploaded_bytes, report.hashed, report.cached
        )

    def _raise_failed(self) -> None:
        for job in self._jobs:
            if job.done() and (exc := job.exception()) is not None:
                raise exc

    def __enter__(self) -> _Uploader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # On an error, uploads not yet started are dropped; running ones finish (each
        # blob is stored whole or not at all).
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Placer:
    """Places blobs straight into a local ``file://`` store (the uploader's stand-in).

    A file read for hashing is placed in the same hashing thread once its digest is
    known (a big one is copied into ``tmp/`` while it is hashed, and renamed into place
    after); a file the hash cache vouched for is placed on a worker thread when offered,
    unless the store holds it already. Each blob appears whole (rename from ``tmp/``)
    or not at all, and the server checks every blob's size at commit.
    """

    def __init__(self, root: Path, mode: LinkMode) -> None:
        self._root = root
        self._mode: LinkMode = mode
        self._lock = threading.Lock()
        self._offered: set[str] = set()
        self._placed: set[str] = set()
        self._copier = ThreadPoolExecutor(max_workers=UPLOAD_WORKERS)
        self._jobs: list[Future[object]] = []
        self.uploaded = 0
        self.uploaded_bytes = 0

    @property
    def offered(self) -> int:
        return len(self._offered)

    def read_and_upload(self, f: LocalFile) -> str:
        """Hash ``f`` and place it (in a hashing thread).

        Raises:
            InvalidInput: the file changed while it was read.
        """
        if f.size >= ONE_PASS_BYTES and self._mode == "copy":
            staging = self._copier.submit(stage_copy, self._root, f.path, f.size)
            try:
                digest = hash_checked(f)
                staged = staging.result()
            except BaseException:
                if staging.exception() is None:
                    staging.result().unlink(missing_ok=True)
                raise
            try:
                check_unchanged(f)
            except BaseException:
                staged.unlink(missing_ok=True)
                raise
            self._count(digest, f.size, commit_staged(self._root, staged, digest, f.size))
            return digest
        digest = hash_checked(f)
        self._place(f, digest)
        return digest

    def _place(self, f: LocalFile, digest: str) -> None:
        placed = place(self._root, f.path, digest, f.size, self._mode)
        check_unchanged(f)
        self._count(digest, f.size, placed.new)

    def _count(self, digest: str, size: int, new: bool) -> None:
        with self._lock:
            self._placed.add(digest)
            if new:
                self.uploaded += 1
                self.uploaded_bytes += size

    def offer(self, f: LocalFile, digest: str) -> None:
        if digest in self._offered:
            return
        self._offered.add(digest)
        if digest not in self._placed and not has_blob(self._root, digest, f.size):
            self._jobs.append(self._copier.submit(self._place, f, digest))

    def flush(self) -> None:
        for job in self._jobs:
            if job.done() and (exc := job.exception()) is not None:
                raise exc

    def finish(self) -> None:
        for job in self._jobs:
            job.result()

    def result(self, version: DatasetVersion, created: bool, report: HashReport) -> AddResult:
        return AddResult(
            version, created, self.uploaded, self.uploaded_bytes, report.hashed, report.cached
        )

    def __enter__(self) -> _Placer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._copier.shutdown(wait=True, cancel_futures=True)


def get_dataset(
    client: ModelyardClient, version: DatasetVersion, dest: Path, progress: Progress = _quiet
) -> list[Path]:
    """Download every file of ``version`` under ``dest``; each file appears atomically.

    Raises:
        InvalidInput: ``dest`` exists and is not a directory.
        IntegrityError: a download did not match its recorded digest.
    """
    if dest.exists() and not dest.is_dir():
        raise InvalidInput(f"{dest}: exists and is not a directory")
    written: list[Path] = []
    progress(f"downloading {version.file_count} file(s), {version.total_size} bytes")

    def fetch(entry: ArtifactEntry) -> Path:
        target = dest.joinpath(*entry.path.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_dataset_file(version, entry, target)
        return target

    with ThreadPoolExecutor(max_workers=UPLOAD_WORKERS) as pool:
        written.extend(pool.map(fetch, version.files))
    return written
