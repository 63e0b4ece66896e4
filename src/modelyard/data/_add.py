"""The client side of ``data add`` and ``data get``.

``add``: scan → hash (cached) → stop early if identical to the latest version → ask
which blobs the server lacks → upload those in parallel → profile tables → commit. The
commit is last and atomic, so a killed add leaves no version, and running it again
uploads only what is still missing.

``get``: download every file of a version, each verified against its recorded digest
and renamed into place only once complete.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.data._batch import plan_batches
from modelyard.data._entities import AddResult, DatasetVersion
from modelyard.data._hashing import HashCache, hash_files
from modelyard.data._manifest import manifest_digest
from modelyard.data._refs import validate_dataset_name
from modelyard.data._scan import LocalFile, scan, table_format

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient

UPLOAD_WORKERS = 4
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

    Raises:
        InvalidInput: a bad name, a missing/unreadable path, a symlink out of the tree.
    """
    validate_dataset_name(name)
    files = scan(source)
    with HashCache(cache_path) if cache_path else contextlib.nullcontext() as cache:
        report = hash_files(files, cache, verify=verify)
    progress(f"hashed {report.hashed} file(s), {report.cached} unchanged (cache)")
    entries = [ArtifactEntry(f.logical, report.digests[f.logical], f.size) for f in files]
    latest = _latest(client, project, name)
    if latest is not None and latest.manifest_digest == manifest_digest(entries):
        if run_id is not None:  # still record the run's output edge
            latest, _ = client.commit_dataset_version(
                project, name, entries, message=message, profile=latest.profile, run_id=run_id
            )
        return AddResult(latest, False, 0, 0, report.hashed, report.cached)
    uploaded, uploaded_bytes = _upload_missing(client, project, files, report.digests, progress)
    profile = None
    if with_profile and any(table_format(f.logical) for f in files):
        from modelyard.data._profile import profile_files  # pyarrow: only when profiling

        profile = profile_files(files)
    version, created = client.commit_dataset_version(
        project, name, entries, message=message, profile=profile, run_id=run_id
    )
    return AddResult(version, created, uploaded, uploaded_bytes, report.hashed, report.cached)


def _latest(client: ModelyardClient, project: str, name: str) -> DatasetVersion | None:
    try:
        return client.get_dataset_version(project, name)
    except NotFound:
        return None


def _upload_missing(
    client: ModelyardClient,
    project: str,
    files: list[LocalFile],
    digests: dict[str, str],
    progress: Progress,
) -> tuple[int, int]:
    by_digest: dict[str, LocalFile] = {}
    for f in files:
        by_digest.setdefault(digests[f.logical], f)
    missing = client.missing_blobs(project, list(by_digest))
    total = sum(by_digest[d].size for d in missing)
    stored = len(by_digest) - len(missing)
    progress(f"uploading {len(missing)} new blob(s), {total} bytes; {stored} already stored")
    batches, alone = plan_batches([(d, by_digest[d].path, by_digest[d].size) for d in missing])
    with ThreadPoolExecutor(max_workers=UPLOAD_WORKERS) as pool:
        jobs: list[Future[object]] = [
            pool.submit(client.put_blob_batch, project, batch) for batch in batches
        ]
        jobs += [pool.submit(client.put_blob, project, d, path) for d, path, _ in alone]
        for job in jobs:
            job.result()
    return len(missing), total


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
