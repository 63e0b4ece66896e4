"""What the file backend adds to the shared contract: its layout and its leftovers."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.artifacts import FileBlobStore
from modelyard.core.clock import FakeClock
from modelyard.core.errors import IntegrityError, InvalidInput


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
