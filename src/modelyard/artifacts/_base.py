"""The blob store contract: content-addressed, immutable, verified on every read.

A blob is a byte string named by the lowercase hex SHA-256 of its content (its
*digest*). Because the name is derived from the content, a blob can never be
modified, identical content is stored once, and every read can be verified.

Every backend (``file://``, ``s3://`` ...) subclasses :class:`BlobStore` and must pass
the shared suite in :mod:`modelyard.testing.artifact_suite`.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from modelyard.core.errors import IntegrityError, InvalidInput

DEFAULT_CHUNK_SIZE = 1 << 20
# What a put accepts as a piece of content.
Chunk = bytes | bytearray | memoryview
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")


def validate_digest(digest: str) -> str:
    """Return ``digest`` unchanged if it is a lowercase hex SHA-256 (64 characters).

    Raises:
        InvalidInput: anything else, including upper-case hex and surrounding spaces.
    """
    if not isinstance(digest, str) or _DIGEST_RE.fullmatch(digest) is None:
        raise InvalidInput(
            f"invalid blob digest {digest!r}: expected 64 lowercase hex characters (sha256)"
        )
    return digest


@dataclass(frozen=True)
class BlobInfo:
    """What a store knows about one stored blob."""

    digest: str
    size: int


class BlobStore(ABC):
    """A content-addressed store of immutable blobs.

    Thread safety:
        Every method may be called from several threads at once on one instance (the
        server calls a store from a thread pool). Two concurrent puts of the same
        content both succeed and return the same :class:`BlobInfo`.

    Atomicity:
        A blob becomes visible (``exists``, ``open_stream``, ``iter_digests``) only once
        its full content is stored; a reader never sees a partial blob, and a put that
        fails (a mismatching ``expected_digest``, a failing source iterator, a crash)
        stores nothing. Leftovers of a killed process are removed by
        :meth:`remove_stale_partials`.

    Errors:
        Every method that takes a digest raises :class:`InvalidInput` for a string that
        is not a lowercase hex SHA-256. A backend that cannot be reached (or is
        misconfigured, e.g. a missing bucket) raises :class:`Unavailable`.

    Stores hold connections or other resources: call :meth:`close` (or use the store as
    a context manager) when done.
    """

    @property
    @abstractmethod
    def uri(self) -> str:
        """The URI this store was opened from (``file:///...``, ``s3://bucket/prefix``)."""

    @abstractmethod
    def put_stream(
        self, chunks: Iterable[Chunk], *, expected_digest: str | None = None
    ) -> BlobInfo:
        """Store the concatenation of ``chunks``, hashing it as it streams by.

        Memory use does not depend on the blob's size. Storing content that is already
        present succeeds and keeps one copy.

        Args:
            chunks: The content, in pieces of any size (``bytes``, ``bytearray`` or
                ``memoryview``).
            expected_digest: If given, the digest the content must have.

        Returns:
            The digest and size of the stored blob.

        Raises:
            IntegrityError: the content's digest differs from ``expected_digest``;
                nothing is stored.
            InvalidInput: ``expected_digest`` is malformed, or a chunk is not bytes.
        """

    @abstractmethod
    def exists(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""

    @abstractmethod
    def size(self, digest: str) -> int:
        """The size in bytes of a stored blob.

        Raises:
            NotFound: no blob has this digest.
        """

    @abstractmethod
    def delete(self, digest: str) -> None:
        """Remove a blob. Deleting a blob that is not stored is not an error."""

    @abstractmethod
    def iter_digests(self) -> Iterator[str]:
        """Yield the digest of every stored blob once, in ascending order."""

    @abstractmethod
    def remove_stale_partials(self, older_than_s: float) -> int:
        """Remove leftovers of puts that never finished (e.g. their process was killed).

        Args:
            older_than_s: Only leftovers at least this old are removed, so puts in
                progress elsewhere are not disturbed.

        Returns:
            How many leftovers were removed.

        Raises:
            InvalidInput: ``older_than_s`` is negative.
        """

    @abstractmethod
    def _open_chunks(self, digest: str, chunk_size: int) -> tuple[int, Iterator[bytes]]:
        """Return the recorded size and a lazy, unverified iterator over a blob's bytes.

        Must raise ``NotFound`` before returning when the blob is missing, and must not
        hold an open resource until the iterator is first advanced.
        """

    def put_bytes(self, data: bytes, *, expected_digest: str | None = None) -> BlobInfo:
        """Store ``data``; see :meth:`put_stream`."""
        return self.put_stream([data], expected_digest=expected_digest)

    def put_file(self, path: Path, *, expected_digest: str | None = None) -> BlobInfo:
        """Store the content of the file at ``path``; see :meth:`put_stream`."""
        with open(path, "rb") as f:
            return self.put_stream(
                iter(lambda: f.read(DEFAULT_CHUNK_SIZE), b""), expected_digest=expected_digest
            )

    def open_stream(
        self, digest: str, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Generator[bytes, None, None]:
        """Stream a blob's content, verifying it on the way.

        Args:
            digest: The blob to read.
            chunk_size: The largest chunk yielded, in bytes.

        Returns:
            A generator of chunks of at most ``chunk_size`` bytes. The last chunk is
            yielded only after the whole content was checked against ``digest``;
            closing the generator early releases what it holds.

        Raises:
            NotFound: no blob has this digest (raised by this call, before any chunk).
            IntegrityError: raised by the generator when the stored content does not
                match its digest or its recorded size.
        """
        validate_digest(digest)
        if chunk_size <= 0:
            raise InvalidInput(f"chunk_size must be positive, got {chunk_size}")
        size, chunks = self._open_chunks(digest, chunk_size)
        return _verified(chunks, digest, size, self.uri)

    def read_bytes(self, digest: str) -> bytes:
        """The whole, verified content of a blob (for small blobs).

        Raises:
            NotFound: no blob has this digest.
            IntegrityError: the stored content does not match its digest.
        """
        return b"".join(self.open_stream(digest))

    def read_to_path(self, digest: str, dest: Path) -> None:
        """Write a blob's verified content to ``dest``, creating parent directories.

        The content goes to a temporary sibling of ``dest`` that replaces ``dest`` only
        once verified, so ``dest`` is never partially written: on any failure it is
        left as it was and the temporary file is removed.

        Raises:
            NotFound: no blob has this digest.
            IntegrityError: the stored content does not match its digest.
        """
        dest = Path(dest)
        stream = self.open_stream(digest)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            f, tmp = create_temp_file(dest.parent, f".{dest.name}.")
            try:
                with f:
                    for chunk in stream:
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, dest)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        finally:
            stream.close()

    def close(self) -> None:  # noqa: B027 - optional hook, not every store holds resources
        """Release connections and other resources; the store is unusable afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


def _verified(
    chunks: Iterator[bytes], digest: str, size: int, where: str
) -> Generator[bytes, None, None]:
    # One chunk is held back so the check runs before the last chunk is handed out:
    # a caller that stops after exactly `size` bytes still gets the verdict.
    hasher = hashlib.sha256()
    seen = 0
    pending: bytes | None = None
    try:
        for chunk in chunks:
            hasher.update(chunk)
            seen += len(chunk)
            if pending is not None:
                yield pending
            pending = chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    if seen != size:
        raise IntegrityError(
            f"blob {digest} in {where} is corrupt: {seen} bytes read, {size} recorded"
        )
    actual = hasher.hexdigest()
    if actual != digest:
        raise IntegrityError(f"blob {digest} in {where} is corrupt: its content hashes to {actual}")
    if pending is not None:
        yield pending


def write_hashing(chunks: Iterable[Chunk], out: BinaryIO) -> BlobInfo:
    """Write ``chunks`` to ``out`` and return the digest and size of what was written.

    Raises:
        InvalidInput: a chunk is not ``bytes``, ``bytearray`` or ``memoryview``.
    """
    hasher = hashlib.sha256()
    size = 0
    for chunk in chunks:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise InvalidInput(f"blob content must be bytes, got a {type(chunk).__name__} chunk")
        hasher.update(chunk)
        out.write(chunk)
        size += len(chunk) if not isinstance(chunk, memoryview) else chunk.nbytes
    return BlobInfo(digest=hasher.hexdigest(), size=size)


def check_expected(info: BlobInfo, expected_digest: str | None, where: str) -> None:
    """Raise IntegrityError when ``expected_digest`` is given and differs from ``info``."""
    if expected_digest is not None and info.digest != expected_digest:
        raise IntegrityError(
            f"content for {where} hashes to {info.digest}, not the expected {expected_digest}; "
            "nothing was stored"
        )


def create_temp_file(directory: Path, prefix: str) -> tuple[BinaryIO, Path]:
    """Create a new, uniquely named file in ``directory`` (honouring the umask).

    Returns:
        The file opened for binary writing, and its path.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        path = directory / f"{prefix}{secrets.token_hex(8)}.partial"
        try:
            fd = os.open(path, flags, 0o666)
        except FileExistsError:
            continue
        return os.fdopen(fd, "wb"), path
