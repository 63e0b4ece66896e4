"""The blob batch format: many small blobs in one request body.

``data add`` of many small files spent most of its time on per-request overhead (one
HTTP exchange, token check and audit record per blob). A batch body is one JSON line
naming the blobs, then their bytes back to back::

    {"blobs": [{"digest": "<sha256>", "size": 1048576}, ...]}\\n
    <bytes of blob 1><bytes of blob 2>...

The server verifies every blob against its digest before storing it (each blob is
written atomically on its own; a batch cut short stores only whole, verified blobs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelyard.artifacts import validate_digest
from modelyard.core.errors import InvalidInput

BATCH_CONTENT_TYPE = "application/x-modelyard-blob-batch"
MAX_BATCH_BYTES = 64 * 1024 * 1024
MAX_BATCH_BLOBS = 4096
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


def decode(body: bytes) -> Iterator[tuple[BatchEntry, bytes]]:
    """Split a batch body into (entry, bytes); checks its shape, not the digests.

    Raises:
        InvalidInput: a missing or malformed header, too many blobs, or a body whose
            length does not match the sizes it declares.
    """
    newline = body.find(b"\n")
    if newline < 0:
        raise InvalidInput("blob batch: the body must start with a JSON header line")
    try:
        header = json.loads(body[:newline])
        items = header["blobs"]
        entries = [BatchEntry(validate_digest(str(i["digest"])), int(i["size"])) for i in items]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"blob batch: malformed header line ({exc})") from exc
    if len(entries) > MAX_BATCH_BLOBS:
        raise InvalidInput(f"blob batch: at most {MAX_BATCH_BLOBS} blobs, got {len(entries)}")
    if any(e.size < 0 for e in entries):
        raise InvalidInput("blob batch: a size is negative")
    declared = sum(e.size for e in entries)
    payload = memoryview(body)[newline + 1 :]
    if declared != len(payload):
        raise InvalidInput(
            f"blob batch: the header declares {declared} bytes, the body has {len(payload)}"
        )
    offset = 0
    for entry in entries:
        yield entry, bytes(payload[offset : offset + entry.size])
        offset += entry.size


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
