"""The blob batch body: read as it streams in, blob after blob, each verified."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelyard.artifacts import BatchEntry, FileBlobStore, encode_header, store_batch
from modelyard.artifacts._batch import BodyReader
from modelyard.client._data_rest import UPLOAD_CHUNK, _coalesced, _exact_chunks
from modelyard.core.errors import InvalidInput

BLOBS = [b"alpha", b"", b"beta" * 3000, b"gamma" * 7]


def _body(blobs: list[bytes]) -> bytes:
    entries = [BatchEntry(hashlib.sha256(b).hexdigest(), len(b)) for b in blobs]
    return encode_header(entries) + b"".join(blobs)


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.fixture
def store(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "store")


@pytest.mark.parametrize("piece", [1, 7, 64, 1 << 20])
def test_blobs_across_chunk_boundaries_are_stored_whole(store: FileBlobStore, piece: int) -> None:
    body = _body(BLOBS)
    stored = store_batch(store, _pieces(body, piece), len(body))
    assert [i.size for i in stored] == [len(b) for b in BLOBS]
    assert [store.read_bytes(i.digest) for i in stored] == BLOBS


def test_a_length_mismatch_is_refused_before_anything_is_stored(store: FileBlobStore) -> None:
    body = _body(BLOBS)
    with pytest.raises(InvalidInput, match="declares"):
        store_batch(store, [body[:-3]], len(body) - 3)
    assert list(store.iter_digests()) == []


def test_without_a_length_a_short_body_keeps_only_the_whole_blobs(store: FileBlobStore) -> None:
    body = _body(BLOBS)
    with pytest.raises(InvalidInput, match="short"):
        store_batch(store, _pieces(body[:-10], 100))
    kept = {hashlib.sha256(b).hexdigest() for b in BLOBS[:3]}
    assert set(store.iter_digests()) == kept
    with pytest.raises(InvalidInput, match="longer"):
        store_batch(store, [body, b"extra"])


def test_a_lie_about_one_blob_is_named(store: FileBlobStore) -> None:
    liar = hashlib.sha256(b"other").hexdigest()
    body = encode_header([BatchEntry(liar, 5)]) + b"alpha"
    with pytest.raises(InvalidInput, match=f"blob {liar}: content does not match"):
        store_batch(store, [body], len(body))
    assert not store.exists(liar)


def test_header_line_must_come_first_and_be_bounded() -> None:
    with pytest.raises(InvalidInput, match="JSON header line"):
        BodyReader([b"no newline at all"]).read_line(1024)
    with pytest.raises(InvalidInput, match="JSON header line"):
        BodyReader([b"x" * 600, b"x" * 600, b"\n"]).read_line(1000)
    reader = BodyReader([b'{"a"', b": 1}\nrest"])
    assert reader.read_line(1000) == b'{"a": 1}'
    assert b"".join(reader.take(4)) == b"rest"
    assert reader.at_end()


def test_client_chunks_are_about_upload_chunk_sized(tmp_path: Path) -> None:
    small = [b"s" * 1000] * 3000
    chunks = list(_coalesced(small))
    assert b"".join(chunks) == b"".join(small)
    assert all(len(c) <= UPLOAD_CHUNK for c in chunks)
    assert len(chunks) == -(-3000 * 1000 // UPLOAD_CHUNK)
    big = tmp_path / "big.bin"
    big.write_bytes(b"b" * (UPLOAD_CHUNK * 2 + 5))
    assert [len(c) for c in _exact_chunks(big, UPLOAD_CHUNK * 2 + 5)] == [
        UPLOAD_CHUNK,
        UPLOAD_CHUNK,
        5,
    ]


def test_a_file_that_shrank_since_it_was_hashed_fails_the_upload(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"now shorter")
    with pytest.raises(InvalidInput, match="changed while it was being added"):
        list(_exact_chunks(path, 100))
