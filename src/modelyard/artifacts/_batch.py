"""The blob batch format: many small blobs in one request body.

``data add`` of many small files spent most of its time on per-request overhead (one
HTTP exchange, token check and audit record per blob). A batch body is one JSON line
naming the blobs, then their bytes back to back::

    {"blobs": [{"digest": "<sha256>", "size": 1048576}, ...]}\\n
    <bytes of blob 1><bytes of blob 2>...

The server reads the body as it arrives and stores blob after blob, each verified
against its digest as it streams by (each blob is written atomically on its own; a
batch cut short stores only whole, verified blobs). Nothing is joined or copied into
one big buffer, so a batch costs the server little memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelyard.artifacts._base import BlobInfo, BlobStore, validate_digest
from modelyard.core.errors import IntegrityError, InvalidInput

BATCH_CONTENT_TYPE = "application/x-modelyard-blob-batch"
MAX_BATCH_BYTES = 64 * 1024 * 1024
MAX_BATCH_BLOBS = 4096
MAX_HEADER_BYTES = 1024 * 1024  # 4096 entries of ~95 bytes fit with room to spare
# Files up to this size travel in batches; bigger ones are streamed one per request.
BATCHABLE_FILE_BYTES = 4 * 1024 * 1024
TARGET_BATCH_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class BatchEntry:
    digest: str
    size: int


def encode_header(entries: Sequence[BatchEntry]) -> bytes:
    """The first line of a batch body."""
    blobs = [{"digest": e.digest, "size": e.size} for e in entries]
    return json.dumps({"blobs": blobs}, separators=(",", ":")).encode() + b"\n"


def decode_header(line: bytes) -> list[BatchEntry]:
    """The entries of a batch's header line (without its newline).

    Raises:
        InvalidInput: a malformed header, a bad digest, too many blobs, a negative size.
    """
    try:
        header = json.loads(line)
        items = header["blobs"]
        entries = [BatchEntry(validate_digest(str(i["digest"])), int(i["size"])) for i in items]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"blob batch: malformed header line ({exc})") from exc
    if len(entries) > MAX_BATCH_BLOBS:
        raise InvalidInput(f"blob batch: at most {MAX_BATCH_BLOBS} blobs, got {len(entries)}")
    if any(e.size < 0 for e in entries):
        raise InvalidInput("blob batch: a size is negative")
    return entries


class BodyReader:
    """Reads a batch body from the chunks it arrives in, without joining them.

    The header line first (:meth:`read_line`), then each blob's bytes as an iterator of
    pieces (:meth:`take`), which are views of the received chunks, not copies.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._rest = memoryview(b"")
        self.consumed = 0

    def _next_chunk(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                self._rest = memoryview(chunk)
                return True
        return False

    def read_line(self, limit: int) -> bytes:
        """The bytes up to the first newline (which is consumed, not returned).

        Raises:
            InvalidInput: no newline within ``limit`` bytes or before the body ends.
        """
        parts: list[bytes] = []
        seen = 0
        while True:
            newline = bytes(self._rest[: limit + 1 - seen]).find(b"\n")
            if newline >= 0:
                parts.append(bytes(self._rest[:newline]))
                self._rest = self._rest[newline + 1 :]
                self.consumed += seen + newline + 1
                return b"".join(parts)
            seen += len(self._rest)
            parts.append(bytes(self._rest))
            if seen > limit or not self._next_chunk():
                raise InvalidInput("blob batch: the body must start with a JSON header line")

    def take(self, size: int) -> Iterator[memoryview]:
        """The next ``size`` bytes, in pieces.

        Raises:
            InvalidInput: the body ends first (raised by the iterator).
        """
        left = size
        while left:
            if not self._rest and not self._next_chunk():
                raise InvalidInput(
                    f"blob batch: the body ended {left} bytes short of what the header declares"
                )
            piece = self._rest[:left]
            self._rest = self._rest[len(piece) :]
            left -= len(piece)
            self.consumed += len(piece)
            yield piece

    def at_end(self) -> bool:
        """Whether the body has no bytes left (reads on to find out)."""
        return not self._rest and not self._next_chunk()


def store_batch(
    store: BlobStore, chunks: Iterable[bytes], content_length: int | None = None
) -> list[BlobInfo]:
    """Store every blob of a batch body, each verified against its digest as it streams by.

    With ``content_length`` known, a body whose length does not match what its header
    declares is refused before anything is stored; otherwise the blobs before the
    mismatch are stored (each is whole and verified on its own).

    Raises:
        InvalidInput: a malformed body, or a blob whose content does not match its digest.
    """
    reader = BodyReader(chunks)
    entries = decode_header(reader.read_line(MAX_HEADER_BYTES))
    declared = sum(e.size for e in entries)
    if content_length is not None and content_length - reader.consumed != declared:
        raise InvalidInput(
            f"blob batch: the header declares {declared} bytes, the body has "
            f"{content_length - reader.consumed}"
        )
    stored: list[BlobInfo] = []
    for entry in entries:
        try:
            stored.append(store.put_stream(reader.take(entry.size), expected_digest=entry.digest))
        except IntegrityError as exc:
            raise InvalidInput(f"blob {entry.digest}: content does not match") from exc
    if not reader.at_end():
        raise InvalidInput(f"blob batch: the body is longer than the {declared} bytes declared")
    return stored


def plan_batches(
    files: Sequence[tuple[str, Path, int]],
) -> tuple[list[list[tuple[str, Path, int]]], list[tuple[str, Path, int]]]:
    """Group ``(digest, path, size)`` into batches; return them and the files sent alone."""
    batches: list[list[tuple[str, Path, int]]] = []
    alone: list[tuple[str, Path, int]] = []
    current: list[tuple[str, Path, int]] = []
    current_bytes = 0
    for item in files:
        if item[2] > BATCHABLE_FILE_BYTES:
            alone.append(item)
            continue
        if current and (
            current_bytes + item[2] > TARGET_BATCH_BYTES or len(current) >= MAX_BATCH_BLOBS
        ):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += item[2]
    if current:
        batches.append(current)
    return batches, alone
