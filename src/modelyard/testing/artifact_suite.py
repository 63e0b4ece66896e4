"""The conformance suite every :class:`~modelyard.artifacts.BlobStore` must pass.

Subclass :class:`BlobStoreConformance` in a test module and provide two fixtures::

    class TestMyBlobStore(BlobStoreConformance):
        @pytest.fixture
        def blob_store(self, tmp_path): ...   # a fresh, empty store; closed after

        @pytest.fixture
        def corrupt_blob(self, blob_store): ...  # callable(digest, data) that replaces
                                                  # the stored bytes behind the store's back
"""

from __future__ import annotations

import gc
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelyard.artifacts import BlobInfo, BlobStore, Manifest, ManifestEntry
from modelyard.core.errors import IntegrityError, InvalidInput, NotFound

CorruptBlob = Callable[[str, bytes], None]

_MiB = 1 << 20
EMPTY_DIGEST = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MISSING_DIGEST = "0" * 64
INVALID_DIGESTS = [
    "",
    "abc",
    "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    EMPTY_DIGEST[:-1],
    EMPTY_DIGEST + "0",
    "g" * 64,
    EMPTY_DIGEST + "\n",
    " " + EMPTY_DIGEST[1:],
    "../" + EMPTY_DIGEST[3:],
]


def sha256_hex(data: bytes) -> str:
    """The lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _pseudo_random_chunks(total: int, chunk: int, seed: bytes) -> Iterator[bytes]:
    """Deterministic chunks, generated one at a time (never the whole blob in memory)."""
    block = hashlib.sha512(seed).digest() * (chunk // 64 + 1)
    for i in range(0, total, chunk):
        salt = i.to_bytes(8, "big")
        yield (salt + block)[: min(chunk, total - i)]


def _collect(stream: Iterator[bytes], into: list[bytes]) -> None:
    for chunk in stream:
        into.append(chunk)


class BlobStoreConformance:
    """Behaviour every blob store backend must show; see the module docstring."""

    @pytest.fixture
    def blob_store(self) -> BlobStore:
        pytest.fail("a BlobStoreConformance subclass must define the 'blob_store' fixture")

    @pytest.fixture
    def corrupt_blob(self) -> CorruptBlob:
        pytest.fail("a BlobStoreConformance subclass must define the 'corrupt_blob' fixture")

    # --- writing and reading ---------------------------------------------------------

    def test_put_bytes_round_trip(self, blob_store: BlobStore) -> None:
        data = b"hello, artifacts"
        info = blob_store.put_bytes(data)
        assert info == BlobInfo(digest=sha256_hex(data), size=len(data))
        assert blob_store.exists(info.digest)
        assert blob_store.size(info.digest) == len(data)
        assert blob_store.read_bytes(info.digest) == data
        assert b"".join(blob_store.open_stream(info.digest)) == data

    def test_put_stream_equals_put_bytes(self, blob_store: BlobStore) -> None:
        pieces = [b"a", b"", bytearray(b"bc"), memoryview(b"def"), b"g" * 10_000]
        info = blob_store.put_stream(iter(pieces))  # type: ignore[arg-type]
        data = b"abcdef" + b"g" * 10_000
        assert info == BlobInfo(sha256_hex(data), len(data))
        assert blob_store.read_bytes(info.digest) == data

    def test_put_file_and_read_to_path(self, blob_store: BlobStore, tmp_path: Path) -> None:
        src = tmp_path / "model.bin"
        src.write_bytes(os.urandom(3 * _MiB + 17))
        info = blob_store.put_file(src)
        dest = tmp_path / "out" / "nested" / "model.bin"
        blob_store.read_to_path(info.digest, dest)
        assert dest.read_bytes() == src.read_bytes()
        assert sorted(p.name for p in dest.parent.iterdir()) == ["model.bin"]

    def test_read_to_path_replaces_existing_file(
        self, blob_store: BlobStore, tmp_path: Path
    ) -> None:
        dest = tmp_path / "weights.bin"
        dest.write_bytes(b"old content that is longer than the new one")
        info = blob_store.put_bytes(b"new")
        blob_store.read_to_path(info.digest, dest)
        assert dest.read_bytes() == b"new"

    def test_open_stream_chunks_are_bounded(self, blob_store: BlobStore) -> None:
        data = os.urandom(100_000)
        info = blob_store.put_bytes(data)
        chunks = list(blob_store.open_stream(info.digest, chunk_size=4096))
        assert b"".join(chunks) == data
        assert all(0 < len(c) <= 4096 for c in chunks)
        with pytest.raises(InvalidInput):
            blob_store.open_stream(info.digest, chunk_size=0)

    def test_open_stream_closed_early_releases_resources(self, blob_store: BlobStore) -> None:
        info = blob_store.put_bytes(os.urandom(50_000))
        stream = blob_store.open_stream(info.digest, chunk_size=1000)
        assert len(next(stream)) == 1000
        stream.close()
        unopened = blob_store.open_stream(info.digest)
        del unopened
        gc.collect()  # an unclosed file or socket would warn, and warnings are errors

    def test_empty_blob(self, blob_store: BlobStore, tmp_path: Path) -> None:
        info = blob_store.put_bytes(b"")
        assert info == BlobInfo(EMPTY_DIGEST, 0)
        assert blob_store.exists(EMPTY_DIGEST)
        assert blob_store.size(EMPTY_DIGEST) == 0
        assert blob_store.read_bytes(EMPTY_DIGEST) == b""
        assert blob_store.put_stream(iter([])) == info
        blob_store.read_to_path(EMPTY_DIGEST, tmp_path / "empty")
        assert (tmp_path / "empty").read_bytes() == b""

    def test_large_blob_streams_both_ways(self, blob_store: BlobStore) -> None:
        total = 64 * _MiB
        expected = hashlib.sha256()
        for chunk in _pseudo_random_chunks(total, _MiB, b"large"):
            expected.update(chunk)
        info = blob_store.put_stream(_pseudo_random_chunks(total, _MiB, b"large"))
        assert info == BlobInfo(expected.hexdigest(), total)
        assert blob_store.size(info.digest) == total
        read_back = hashlib.sha256()
        largest = 0
        for chunk in blob_store.open_stream(info.digest, chunk_size=_MiB):
            read_back.update(chunk)
            largest = max(largest, len(chunk))
        assert read_back.hexdigest() == info.digest
        assert largest <= _MiB

    # --- content addressing ----------------------------------------------------------

    def test_identical_content_is_stored_once(self, blob_store: BlobStore) -> None:
        first = blob_store.put_bytes(b"same")
        second = blob_store.put_stream(iter([b"sa", b"me"]))
        assert first == second
        assert list(blob_store.iter_digests()) == [first.digest]

    def test_iter_digests_lists_every_blob_in_order(self, blob_store: BlobStore) -> None:
        digests = {blob_store.put_bytes(f"blob {i}".encode()).digest for i in range(20)}
        assert list(blob_store.iter_digests()) == sorted(digests)

    def test_expected_digest_match_is_accepted(self, blob_store: BlobStore) -> None:
        info = blob_store.put_bytes(b"payload", expected_digest=sha256_hex(b"payload"))
        assert blob_store.read_bytes(info.digest) == b"payload"

    def test_expected_digest_mismatch_stores_nothing(self, blob_store: BlobStore) -> None:
        with pytest.raises(IntegrityError, match=sha256_hex(b"other")):
            blob_store.put_bytes(b"payload", expected_digest=sha256_hex(b"other"))
        assert not blob_store.exists(sha256_hex(b"payload"))
        assert not blob_store.exists(sha256_hex(b"other"))
        assert list(blob_store.iter_digests()) == []

    def test_failing_source_stores_nothing(self, blob_store: BlobStore) -> None:
        def source() -> Iterator[bytes]:
            yield b"first part"
            raise OSError("upload connection reset")

        with pytest.raises(OSError, match="connection reset"):
            blob_store.put_stream(source())
        assert list(blob_store.iter_digests()) == []

    def test_non_bytes_chunk_is_rejected(self, blob_store: BlobStore) -> None:
        with pytest.raises(InvalidInput, match="bytes"):
            blob_store.put_stream(iter([b"ok", "text"]))  # type: ignore[arg-type]
        assert list(blob_store.iter_digests()) == []

    # --- verification ----------------------------------------------------------------

    @pytest.mark.parametrize("replacement", [b"X" * 32, b"short"], ids=["same-size", "resized"])
    def test_corrupted_blob_is_detected_on_read(
        self, blob_store: BlobStore, corrupt_blob: CorruptBlob, replacement: bytes
    ) -> None:
        info = blob_store.put_bytes(b"0123456789abcdef0123456789abcdef")
        corrupt_blob(info.digest, replacement)
        with pytest.raises(IntegrityError, match=info.digest):
            blob_store.read_bytes(info.digest)
        with pytest.raises(IntegrityError):
            _collect(blob_store.open_stream(info.digest, chunk_size=4), [])

    def test_corrupted_blob_never_yields_its_last_chunk(
        self, blob_store: BlobStore, corrupt_blob: CorruptBlob
    ) -> None:
        info = blob_store.put_bytes(b"A" * 10)
        corrupt_blob(info.digest, b"B" * 10)
        received: list[bytes] = []
        with pytest.raises(IntegrityError):
            _collect(blob_store.open_stream(info.digest, chunk_size=4), received)
        assert sum(map(len, received)) < 10

    def test_read_to_path_never_leaves_a_partial_file(
        self, blob_store: BlobStore, corrupt_blob: CorruptBlob, tmp_path: Path
    ) -> None:
        info = blob_store.put_bytes(os.urandom(5 * _MiB))
        corrupt_blob(info.digest, os.urandom(5 * _MiB))
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(IntegrityError):
            blob_store.read_to_path(info.digest, out / "fresh.bin")
        assert list(out.iterdir()) == []
        (out / "kept.bin").write_bytes(b"previous version")
        with pytest.raises(IntegrityError):
            blob_store.read_to_path(info.digest, out / "kept.bin")
        assert [p.name for p in out.iterdir()] == ["kept.bin"]
        assert (out / "kept.bin").read_bytes() == b"previous version"

    # --- missing blobs and bad digests -----------------------------------------------

    def test_missing_blob(self, blob_store: BlobStore, tmp_path: Path) -> None:
        assert not blob_store.exists(MISSING_DIGEST)
        with pytest.raises(NotFound, match=MISSING_DIGEST):
            blob_store.size(MISSING_DIGEST)
        with pytest.raises(NotFound):
            blob_store.open_stream(MISSING_DIGEST)  # raised before iterating
        with pytest.raises(NotFound):
            blob_store.read_bytes(MISSING_DIGEST)
        with pytest.raises(NotFound):
            blob_store.read_to_path(MISSING_DIGEST, tmp_path / "sub" / "x")
        assert not (tmp_path / "sub").exists()

    @pytest.mark.parametrize("digest", INVALID_DIGESTS)
    def test_invalid_digest_is_rejected(
        self, blob_store: BlobStore, digest: str, tmp_path: Path
    ) -> None:
        calls: list[Callable[[], object]] = [
            lambda: blob_store.exists(digest),
            lambda: blob_store.size(digest),
            lambda: blob_store.open_stream(digest),
            lambda: blob_store.read_bytes(digest),
            lambda: blob_store.read_to_path(digest, tmp_path / "x"),
            lambda: blob_store.delete(digest),
            lambda: blob_store.put_bytes(b"x", expected_digest=digest),
        ]
        for call in calls:
            with pytest.raises(InvalidInput, match="digest"):
                call()
        assert list(blob_store.iter_digests()) == []

    # --- deletion and housekeeping ---------------------------------------------------

    def test_delete_is_idempotent(self, blob_store: BlobStore) -> None:
        info = blob_store.put_bytes(b"to be deleted")
        kept = blob_store.put_bytes(b"to be kept")
        blob_store.delete(info.digest)
        blob_store.delete(info.digest)
        blob_store.delete(MISSING_DIGEST)
        assert not blob_store.exists(info.digest)
        with pytest.raises(NotFound):
            blob_store.read_bytes(info.digest)
        assert list(blob_store.iter_digests()) == [kept.digest]
        assert blob_store.put_bytes(b"to be deleted") == info
        assert blob_store.read_bytes(info.digest) == b"to be deleted"

    def test_remove_stale_partials_keeps_blobs(self, blob_store: BlobStore) -> None:
        info = blob_store.put_bytes(b"complete")
        assert blob_store.remove_stale_partials(older_than_s=0) == 0
        assert blob_store.read_bytes(info.digest) == b"complete"
        with pytest.raises(InvalidInput):
            blob_store.remove_stale_partials(older_than_s=-1)

    # --- concurrency -----------------------------------------------------------------

    def test_concurrent_puts_of_the_same_content(self, blob_store: BlobStore) -> None:
        data = os.urandom(2 * _MiB)
        barrier = threading.Barrier(8)

        def put() -> BlobInfo:
            barrier.wait(timeout=30)
            return blob_store.put_stream(iter([data[:_MiB], data[_MiB:]]))

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: put(), range(8)))
        assert set(results) == {BlobInfo(sha256_hex(data), len(data))}
        assert list(blob_store.iter_digests()) == [sha256_hex(data)]
        assert blob_store.read_bytes(sha256_hex(data)) == data

    def test_concurrent_puts_and_reads_of_different_content(self, blob_store: BlobStore) -> None:
        payloads = [os.urandom(256 * 1024 + i) for i in range(8)]

        def round_trip(data: bytes) -> bytes:
            return blob_store.read_bytes(blob_store.put_bytes(data).digest)

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(round_trip, payloads)) == payloads
        assert sorted(blob_store.iter_digests()) == sorted(map(sha256_hex, payloads))

    # --- manifests -------------------------------------------------------------------

    def test_manifest_stored_as_a_blob(self, blob_store: BlobStore) -> None:
        files = {"model/weights.bin": os.urandom(1000), "plots/roc.png": b"png", "README": b""}
        entries = []
        for path, data in files.items():
            info = blob_store.put_bytes(data)
            entries.append(ManifestEntry(path=path, digest=info.digest, size=info.size))
        manifest = Manifest.from_entries(entries)
        stored = blob_store.put_bytes(manifest.to_json())
        again = Manifest.from_entries(reversed(entries))
        assert blob_store.put_bytes(again.to_json()) == stored
        loaded = Manifest.from_json(blob_store.read_bytes(stored.digest))
        assert loaded == manifest
        assert loaded.total_size == sum(len(d) for d in files.values())
        for path, data in files.items():
            entry = loaded.get(path)
            assert entry is not None
            assert blob_store.read_bytes(entry.digest) == data
