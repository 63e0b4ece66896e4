"""What the file backend adds to the shared contract: its layout and its leftovers."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from modelyard.artifacts import FileBlobStore, _file, create_blob_store
from modelyard.artifacts._base import create_temp_file
from modelyard.core.clock import FakeClock
from modelyard.core.errors import IntegrityError, InvalidInput

BIG = 8 * 1024 * 1024  # a blob of several chunks


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FileBlobStore]:
    with FileBlobStore(tmp_path / "store") as s:
        yield s


def _tmp_entries(store: FileBlobStore) -> list[str]:
    return sorted(os.listdir(store.root / "tmp"))


def test_layout_is_sha256_fan_out(store: FileBlobStore) -> None:
    info = store.put_bytes(b"layout")
    digest = hashlib.sha256(b"layout").hexdigest()
    assert store.blob_path(digest) == store.root / "sha256" / digest[:2] / digest
    assert store.blob_path(digest).read_bytes() == b"layout"
    assert info.digest == digest
    assert _tmp_entries(store) == []


def test_uri_is_a_file_uri_of_the_root(tmp_path: Path) -> None:
    with FileBlobStore(tmp_path / "a b") as s:
        assert s.uri == (tmp_path / "a b").as_uri()
        assert repr(s) == f"FileBlobStore({s.uri!r})"


def test_failed_puts_leave_no_temp_files(store: FileBlobStore) -> None:
    with pytest.raises(IntegrityError):
        store.put_bytes(b"x", expected_digest="0" * 64)

    def failing() -> Iterator[bytes]:
        yield b"part"
        raise KeyboardInterrupt  # even a BaseException cleans up

    with pytest.raises(KeyboardInterrupt):
        store.put_stream(failing())
    assert _tmp_entries(store) == []
    assert list(store.iter_digests()) == []


def test_a_damaged_copy_of_other_size_is_replaced_on_put(store: FileBlobStore) -> None:
    info = store.put_bytes(b"precious")
    store.blob_path(info.digest).write_bytes(b"trunc")
    assert store.put_bytes(b"precious") == info
    assert store.read_bytes(info.digest) == b"precious"


def test_stray_files_are_not_listed_as_blobs(store: FileBlobStore) -> None:
    info = store.put_bytes(b"real")
    (store.root / "sha256" / "zz").mkdir()
    (store.root / "sha256" / "zz" / ("z" * 64)).write_bytes(b"")
    (store.root / "sha256" / info.digest[:2] / "notes.txt").write_text("hi")
    (store.root / "sha256" / "README").write_text("hi")
    assert list(store.iter_digests()) == [info.digest]


def test_remove_stale_partials_removes_only_old_leftovers(tmp_path: Path) -> None:
    clock = FakeClock(start_s=1_800_000_000.0)
    with FileBlobStore(tmp_path / "store", clock=clock) as store:
        blob = store.put_bytes(b"complete")
        old = store.root / "tmp" / "put-old.partial"
        new = store.root / "tmp" / "put-new.partial"
        old.write_bytes(b"left by a killed process")
        new.write_bytes(b"being written right now")
        os.utime(old, (clock.now() - 7200, clock.now() - 7200))
        os.utime(new, (clock.now() - 10, clock.now() - 10))
        assert store.remove_stale_partials(older_than_s=3600) == 1
        assert _tmp_entries(store) == ["put-new.partial"]
        clock.advance(3600)
        assert store.remove_stale_partials(older_than_s=3600) == 1
        assert _tmp_entries(store) == []
        assert store.read_bytes(blob.digest) == b"complete"
        with pytest.raises(InvalidInput):
            store.remove_stale_partials(-0.5)


def test_reopening_a_store_sees_its_blobs(tmp_path: Path) -> None:
    with FileBlobStore(tmp_path / "s") as first:
        info = first.put_bytes(b"persisted")
    with FileBlobStore(tmp_path / "s") as second:
        assert second.read_bytes(info.digest) == b"persisted"


def _count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_blobs_are_not_fsynced_by_default(
    store: FileBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_fsyncs(monkeypatch)
    info = store.put_bytes(b"page cache is enough")
    assert store.fsync is False
    assert calls == []
    assert store.read_bytes(info.digest) == b"page cache is enough"


def test_fsync_flushes_the_blob_and_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_fsyncs(monkeypatch)
    with FileBlobStore(tmp_path / "durable", fsync=True) as durable:
        info = durable.put_bytes(b"survives power loss")
        assert durable.fsync is True
        assert len(calls) == 2  # the file, then the directory it was renamed into
        assert durable.put_bytes(b"survives power loss") == info
        assert len(calls) == 3  # a second copy is flushed, then dropped: nothing renamed


def test_factory_passes_the_fsync_choice(tmp_path: Path) -> None:
    with create_blob_store((tmp_path / "a").as_uri(), fsync=True) as durable:
        assert isinstance(durable, FileBlobStore)
        assert durable.fsync is True
    with create_blob_store((tmp_path / "b").as_uri()) as default:
        assert isinstance(default, FileBlobStore)
        assert default.fsync is False


def test_an_empty_file_left_by_a_crash_counts_as_absent(store: FileBlobStore) -> None:
    info = store.put_bytes(b"never flushed")
    store.blob_path(info.digest).write_bytes(b"")  # what a power cut can leave
    assert not store.exists(info.digest)
    assert store.put_bytes(b"never flushed") == info
    assert store.exists(info.digest)
    assert store.read_bytes(info.digest) == b"never flushed"
    empty = store.put_bytes(b"")
    assert store.exists(empty.digest)


def test_a_producer_refilling_one_buffer_gets_what_it_produced(store: FileBlobStore) -> None:
    buffer = bytearray(1 << 20)
    expected = hashlib.sha256()

    def chunks() -> Iterator[bytearray]:
        for i in range(BIG // len(buffer) + 4):
            buffer[:] = bytes([i % 251]) * len(buffer)
            expected.update(buffer)
            yield buffer

    info = store.put_stream(chunks())
    assert info.digest == expected.hexdigest()
    assert info.size == BIG + 4 * len(buffer)
    assert hashlib.sha256(store.blob_path(info.digest).read_bytes()).hexdigest() == info.digest
    assert _tmp_entries(store) == []


def test_a_failing_write_stores_nothing(
    store: FileBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Full:
        """A temp file whose disk fills up part-way through a big blob."""

        def __init__(self, f: BinaryIO) -> None:
            self.f = f
            self.written = 0

        def write(self, data: Any) -> int:
            self.written += len(data)
            if self.written > BIG + (2 << 20):
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

    real_create = create_temp_file

    def create(directory: Path, prefix: str) -> tuple[Any, Path]:
        f, path = real_create(directory, prefix)
        return Full(f), path

    monkeypatch.setattr(_file, "create_temp_file", create)
    threads = threading.active_count()
    with pytest.raises(OSError, match="No space left"):
        store.put_stream(b"x" * (1 << 20) for _ in range(64))
    assert _tmp_entries(store) == []
    assert list(store.iter_digests()) == []
    assert threading.active_count() == threads
