"""The ``file://`` blob store: one file per blob in a local directory.

Layout under the root directory::

    sha256/ab/abcdef...   one file per blob, named by its full digest
    tmp/                  puts in progress (and leftovers of killed processes)

A put writes to a new file in ``tmp/`` and renames it into place; a rename within one
file system is atomic, so readers never see a partial blob (not even after the process
is killed: what it wrote is in the page cache) and two concurrent puts of the same
content simply both succeed.

Durability against power loss or an OS crash is a choice (``fsync``, from the
``MODELYARD_BLOB_FSYNC`` setting): with it each blob is fsync'ed, and its directory
after the rename, before the put returns, which costs the disk's write bandwidth on
every put; without it (the default, as git does for loose objects and DVC for its
cache) the OS writes blobs back in its own time. Either way every read verifies the
blob's digest, and a blob that a crash left empty counts as absent, so adding its
content again repairs it. See docs/data.md.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from modelyard.artifacts._base import (
    BlobInfo,
    BlobStore,
    Chunk,
    check_expected,
    create_temp_file,
    validate_digest,
    write_hashing,
)
from modelyard.core.clock import Clock, SystemClock
from modelyard.core.errors import InvalidInput, NotFound

EMPTY_DIGEST = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256(b"")


class FileBlobStore(BlobStore):
    """Blobs as files under a local directory (created if missing).

    Args:
        root: The store's directory; made absolute.
        clock: The wall clock used to age leftovers in ``tmp/``.
        fsync: Flush every blob (and its directory entry) to disk before a put returns.
    """

    def __init__(
        self, root: Path | str, *, clock: Clock | None = None, fsync: bool = False
    ) -> None:
        self._root = Path(root).absolute()
        self._fsync = fsync
        self._blobs = self._root / "sha256"
        self._tmp = self._root / "tmp"
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)

    @property
    def uri(self) -> str:
        return self._root.as_uri()

    @property
    def root(self) -> Path:
        """The store's directory."""
        return self._root

    def blob_path(self, digest: str) -> Path:
        """Where the blob with this digest is (or would be) stored."""
        validate_digest(digest)
        return self._blobs / digest[:2] / digest

    def put_stream(
        self, chunks: Iterable[Chunk], *, expected_digest: str | None = None
    ) -> BlobInfo:
        if expected_digest is not None:
            validate_digest(expected_digest)
        f, tmp = create_temp_file(self._tmp, "put-")
        try:
            with f:
                info = write_hashing(chunks, f)
                if self._fsync:
                    f.flush()
                    os.fsync(f.fileno())
            check_expected(info, expected_digest, self.uri)
            final = self.blob_path(info.digest)
            if _has_size(final, info.size):
                tmp.unlink()
                return info
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if self._fsync:
            _fsync_dir(final.parent)
        return info

    @property
    def fsync(self) -> bool:
        """Whether puts flush each blob to disk before returning."""
        return self._fsync

    def exists(self, digest: str) -> bool:
        # An empty file under the digest of non-empty content is what an OS crash leaves
        # of a blob that was never flushed: absent, so that the next put replaces it.
        try:
            st = self.blob_path(digest).stat()
        except FileNotFoundError:
            return False
        return stat.S_ISREG(st.st_mode) and (st.st_size > 0 or digest == EMPTY_DIGEST)

    def size(self, digest: str) -> int:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise self._not_found(digest) from None

    def _open_chunks(self, digest: str, chunk_size: int) -> tuple[int, Iterator[bytes]]:
        size = self.size(digest)
        return size, self._read_chunks(digest, chunk_size)

    def _read_chunks(self, digest: str, chunk_size: int) -> Iterator[bytes]:
        try:
            f = open(self.blob_path(digest), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            # Deleted between the size check and the first read.
            raise self._not_found(digest) from None
        with f:
            yield from iter(lambda: f.read(chunk_size), b"")

    def delete(self, digest: str) -> None:
        self.blob_path(digest).unlink(missing_ok=True)

    def iter_digests(self) -> Iterator[str]:
        for fan_out in sorted(_entries(self._blobs)):
            if len(fan_out) != 2:
                continue
            for name in sorted(_entries(self._blobs / fan_out)):
                if name.startswith(fan_out) and _is_digest(name):
                    yield name

    def remove_stale_partials(self, older_than_s: float) -> int:
        if older_than_s < 0:
            raise InvalidInput(f"older_than_s must be >= 0, got {older_than_s}")
        cutoff = self._clock.now() - older_than_s
        removed = 0
        for entry in os.scandir(self._tmp):
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime <= cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue  # finished or removed concurrently
        return removed

    def _not_found(self, digest: str) -> NotFound:
        return NotFound(f"blob {digest} not found in {self.uri}")


def _has_size(path: Path, size: int) -> bool:
    # A same-named file of another size is damaged; the fresh copy replaces it.
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _entries(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


def _is_digest(name: str) -> bool:
    try:
        validate_digest(name)
    except InvalidInput:
        return False
    return True


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
