"""`data add` writing blobs straight into the server's local `file://` store."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from modelyard.artifacts import FileBlobStore
from modelyard.artifacts.placement import (
    ENCRYPTION_MARKER,
    blob_path,
    local_store,
    place,
    store_id,
)
from modelyard.client import ModelyardClient
from modelyard.core.errors import IntegrityError, InvalidInput
from modelyard.data import add as add_module
from modelyard.data.add import add_dataset, get_dataset
from modelyard.testing.harness import Api


def _store_root(api: Api) -> Path:
    blobs = api.ctx.data._blobs  # the server's own store, to look inside
    assert isinstance(blobs, FileBlobStore)
    return blobs.root


def _no_uploads(monkeypatch: pytest.MonkeyPatch, client: ModelyardClient) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a blob was uploaded although the store is local")

    for name in ("put_blob", "put_blob_batch", "put_blob_hashing", "missing_blobs"):
        monkeypatch.setattr(client, name, refuse)


def _tree(root: Path, count: int, size: int) -> Path:
    root.mkdir()
    for i in range(count):
        (root / f"part-{i:03d}.bin").write_bytes(os.urandom(size))
    return root


def _age(root: Path) -> None:
    """Date the files back: the hash cache skips files modified in the last second."""
    for path in root.iterdir():
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns - 10**10))


def test_blobs_are_placed_directly_and_read_back_verified(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _tree(tmp_path / "src", 20, 3000)
    (src / "twin.bin").write_bytes((src / "part-000.bin").read_bytes())  # same content
    _age(src)
    with api.rest_client() as client:
        _no_uploads(monkeypatch, client)
        result = add_dataset(client, "default", src, "direct", cache_path=tmp_path / "h.db")
        assert result.created
        assert result.uploaded_files == 20  # the twin is stored once
        assert result.uploaded_bytes == 20 * 3000
        root = _store_root(api)
        for entry in result.version.files:
            assert blob_path(root, entry.digest).read_bytes() == (src / entry.path).read_bytes()
        assert list((root / "tmp").iterdir()) == []
        again = add_dataset(client, "default", src, "direct", cache_path=tmp_path / "h.db")
        assert not again.created
        assert (again.cached_files, again.hashed_files, again.uploaded_files) == (21, 0, 0)
        out = tmp_path / "out"
        get_dataset(client, result.version, out)
        assert (out / "twin.bin").read_bytes() == (src / "part-000.bin").read_bytes()


def test_a_big_file_is_copied_while_it_is_hashed(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(add_module, "ONE_PASS_BYTES", 1 << 20)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 << 20))
    with api.rest_client() as client:
        _no_uploads(monkeypatch, client)
        result = add_dataset(client, "default", src, "big")
        (entry,) = result.version.files
        assert blob_path(_store_root(api), entry.digest).read_bytes() == src.read_bytes()
        assert list((_store_root(api) / "tmp").iterdir()) == []
        # The same content again (another file): hashed, found present, dropped.
        copy = tmp_path / "copy.bin"
        copy.write_bytes(src.read_bytes())
        assert add_dataset(client, "default", copy, "big2").uploaded_files == 0
        assert list((_store_root(api) / "tmp").iterdir()) == []


def test_link_shares_the_file_and_makes_it_read_only(api: Api, tmp_path: Path) -> None:
    src = _tree(tmp_path / "src", 3, 1000)
    with api.rest_client() as client:
        result = add_dataset(client, "default", src, "linked", link=True)
    root = _store_root(api)
    for entry in result.version.files:
        blob, source = blob_path(root, entry.digest).stat(), (src / entry.path).stat()
        same_inode = (blob.st_ino, blob.st_dev) == (source.st_ino, source.st_dev)
        if same_inode:  # hard link (this file system has no reflinks)
            assert stat.S_IMODE(source.st_mode) & 0o222 == 0
        assert blob_path(root, entry.digest).read_bytes() == (src / entry.path).read_bytes()


def test_a_file_changing_during_the_add_is_refused_by_name(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _tree(tmp_path / "src", 3, 1000)
    victim = src / "part-001.bin"
    real_place = add_module.place

    def place_then_touch(root: Path, source: Path, *args: object, **kwargs: object) -> object:
        placed = real_place(root, source, *args, **kwargs)  # type: ignore[arg-type]
        if source == victim:
            with victim.open("ab") as f:
                f.write(b"appended while the add ran")
        return placed

    monkeypatch.setattr(add_module, "place", place_then_touch)
    with api.rest_client() as client:
        with pytest.raises(InvalidInput, match=r"part-001\.bin"):
            add_dataset(client, "default", src, "moving")
        with pytest.raises(Exception, match="does not exist"):
            client.get_dataset_version("default", "moving")


def test_the_server_checks_sizes_and_reads_verify_digests(api: Api, tmp_path: Path) -> None:
    src = _tree(tmp_path / "src", 2, 4000)
    with api.rest_client() as client:
        result = add_dataset(client, "default", src, "checked")
        root = _store_root(api)
        first, second = result.version.files
        # A blob edited in place (same size) is committed, and refused when read.
        damaged = blob_path(root, first.digest)
        damaged.chmod(0o644)
        damaged.write_bytes(b"x" * first.size)
        with pytest.raises(IntegrityError):
            get_dataset(client, result.version, tmp_path / "out")
        # A blob of the wrong size is refused at commit, naming the file.
        short = blob_path(root, second.digest)
        short.chmod(0o644)
        short.write_bytes(b"y")
        with pytest.raises(InvalidInput, match=r"part-001\.bin"):
            client.commit_dataset_version("default", "checked2", list(result.version.files))


def test_another_folder_or_an_encrypted_store_takes_the_upload_path(
    api: Api, tmp_path: Path
) -> None:
    root = _store_root(api)
    sid = store_id(root)
    assert local_store(str(root), sid) == root
    assert local_store(str(root), "0" * 32) is None  # another store's id
    assert local_store(str(tmp_path / "nowhere"), sid) is None
    (root / ENCRYPTION_MARKER).write_text("{}")
    try:
        assert local_store(str(root), sid) is None
    finally:
        (root / ENCRYPTION_MARKER).unlink()


def test_store_id_is_stable_and_placing_is_idempotent(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "store")
    assert store_id(store.root) == store_id(store.root)
    src = tmp_path / "f.bin"
    src.write_bytes(b"hello")
    digest = store.put_bytes(b"hello").digest
    assert place(store.root, src, digest, 5).how == "present"
    store.delete(digest)
    placed = place(store.root, src, digest, 5)
    assert (placed.new, placed.how) == (True, "copy")
    assert store.read_bytes(digest) == b"hello"
