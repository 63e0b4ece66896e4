"""SHA-256 of local files: streamed in chunks, files in parallel, with a stat cache.

The cache maps (absolute path, size, mtime_ns, inode) to a digest, in
``$MODELYARD_HOME/cache/hashes.sqlite``. A file whose size, mtime or inode changed is
read again; one that kept all three is trusted without reading — the trade-off git and
DVC make too: a change that preserves size and mtime (a tool that restores mtimes, a
clock set back) goes unnoticed unless ``verify=True`` rehashes everything. Files
modified within :data:`RACY_WINDOW_NS` of the hashing are not cached, so a write in
the same timestamp tick as the hashing cannot hide behind an unchanged mtime.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from modelyard.core.datasets import changed_while_added
from modelyard.core.errors import InvalidInput
from modelyard.data._scan import LocalFile

RACY_WINDOW_NS = 1_000_000_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    digest TEXT NOT NULL
)
"""


def hash_cache_path(home: Path) -> Path:
    """Where the (path, size, mtime_ns, inode) → digest cache lives."""
    return home / "cache" / "hashes.sqlite"


def default_workers() -> int:
    """Hashing threads: hashlib releases the GIL, so one or two per core pays off."""
    return max(2, min(8, 2 * len(os.sched_getaffinity(0))))


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks (memory does not grow with its size).

    Raises:
        InvalidInput: the file cannot be read; the message names it.
    """
    try:
        with open(path, "rb", buffering=0) as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from exc


class HashCache:
    """The (path, size, mtime_ns, inode) → digest cache, one SQLite file.

    Safe to share between processes (SQLite locking); use one instance per thread.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def lookup(self, files: Iterable[LocalFile]) -> dict[str, str]:
        """Digests of the files whose cached stat identity still matches, by logical path."""
        found: dict[str, str] = {}
        for f in files:
            row = self._db.execute(
                "SELECT size, mtime_ns, inode, digest FROM file_hashes WHERE path = ?",
                (str(f.path),),
            ).fetchone()
            if row is not None and tuple(row[:3]) == (f.size, f.mtime_ns, f.inode):
                found[f.logical] = str(row[3])
        return found

    def store(self, items: Iterable[tuple[LocalFile, str]], started_ns: int) -> None:
        """Remember digests, skipping files modified too close to ``started_ns``."""
        rows = [
            (str(f.path), f.size, f.mtime_ns, f.inode, digest)
            for f, digest in items
            if f.mtime_ns < started_ns - RACY_WINDOW_NS
        ]
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, inode, digest) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HashCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class HashReport:
    """Digests by logical path, and how many files were read vs. taken from the cache."""

    digests: dict[str, str]
    hashed: int
    cached: int


def hash_files(
    files: Sequence[LocalFile],
    cache: HashCache | None = None,
    *,
    verify: bool = False,
    workers: int | None = None,
    on_hashed: Callable[[LocalFile, str], None] | None = None,
    read: Callable[[LocalFile], str] | None = None,
) -> HashReport:
    """Hash ``files``, reading only those the cache cannot vouch for.

    Args:
        files: What to hash.
        cache: The stat cache; None reads every file.
        verify: Read every file even if cached (and refresh the cache).
        workers: Hashing threads (default :func:`default_workers`).
        on_hashed: Called in the calling thread with each file read and its digest, in
            order, while the threads go on hashing the next ones (``data add`` starts
            uploading there). Not called for files taken from the cache.
        read: Reads one file and returns its digest, in a hashing thread (default: hash
            it); ``data add`` uploads big new files in the same pass.

    Raises:
        InvalidInput: a file changed while it was hashed, or cannot be read.
    """
    started_ns = time.time_ns()
    known = {} if cache is None or verify else cache.lookup(files)
    todo = [f for f in files if f.logical not in known]
    fresh: list[tuple[LocalFile, str]] = []
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        try:
            for f, digest in zip(todo, pool.map(read or hash_checked, todo), strict=True):
                fresh.append((f, digest))
                if on_hashed is not None:
                    on_hashed(f, digest)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    if cache is not None and fresh:
        cache.store(fresh, started_ns)
    digests = dict(known)
    digests.update((f.logical, digest) for f, digest in fresh)
    return HashReport(digests, hashed=len(todo), cached=len(known))


def hash_checked(f: LocalFile) -> str:
    """The file's sha256, refused if the file changed while it was read."""
    digest = sha256_file(f.path)
    check_unchanged(f)
    return digest


def check_unchanged(f: LocalFile) -> None:
    """Raise if ``f`` no longer has the size, mtime and inode it was scanned with."""
    st = f.path.stat()
    if (st.st_size, st.st_mtime_ns, st.st_ino) != (f.size, f.mtime_ns, f.inode):
        raise changed_while_added(f.path)
