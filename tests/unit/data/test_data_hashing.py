"""The stat-keyed hash cache: unchanged files are not read, any stat change rehashes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelyard.core.errors import InvalidInput
from modelyard.data._scan import scan
from modelyard.data.hashing import RACY_WINDOW_NS, HashCache, hash_files

OLD_NS = 1_600_000_000 * 10**9  # far older than the racy window


def _age(path: Path, mtime_ns: int = OLD_NS) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    for name, text in (("a.txt", "alpha"), ("sub/b.txt", "beta")):
        (root / name).write_text(text)
        _age(root / name)
    return root


def test_digests_are_sha256_and_second_pass_reads_nothing(tree: Path, tmp_path: Path) -> None:
    with HashCache(tmp_path / "c.sqlite") as cache:
        first = hash_files(scan(tree), cache)
        assert first.digests["a.txt"] == hashlib.sha256(b"alpha").hexdigest()
        assert (first.hashed, first.cached) == (2, 0)
        second = hash_files(scan(tree), cache)
        assert (second.hashed, second.cached) == (0, 2)
        assert second.digests == first.digests
        verified = hash_files(scan(tree), cache, verify=True)
        assert (verified.hashed, verified.cached) == (2, 0)


@pytest.mark.parametrize("change", ["size", "mtime", "inode"])
def test_any_stat_change_rehashes(tree: Path, tmp_path: Path, change: str) -> None:
    target = tree / "a.txt"
    with HashCache(tmp_path / "c.sqlite") as cache:
        hash_files(scan(tree), cache)
        if change == "size":
            target.write_text("alpha!")
            _age(target)
        elif change == "mtime":
            target.write_text("ALPHA")  # same size: only the mtime tells
            _age(target, OLD_NS + 1)
        else:
            replacement = tree / "new.tmp"
            replacement.write_text("alphz")  # same size, same mtime, new inode
            _age(replacement)
            os.replace(replacement, target)
        report = hash_files(scan(tree), cache)
    assert (report.hashed, report.cached) == (1, 1)
    assert report.digests["a.txt"] == hashlib.sha256(target.read_bytes()).hexdigest()


def test_recently_modified_files_are_not_cached(tree: Path, tmp_path: Path) -> None:
    (tree / "a.txt").write_text("fresh")  # mtime = now, inside the racy window
    assert RACY_WINDOW_NS > 0
    with HashCache(tmp_path / "c.sqlite") as cache:
        hash_files(scan(tree), cache)
        again = hash_files(scan(tree), cache)
    assert (again.hashed, again.cached) == (1, 1)


def test_scan_rejects_symlinks_out_of_the_tree(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("s")
    (tree / "link.txt").symlink_to(outside)
    with pytest.raises(InvalidInput, match="symlink points outside"):
        scan(tree)


def test_scan_follows_symlinks_inside_and_names_paths(tree: Path) -> None:
    (tree / "alias.txt").symlink_to(tree / "a.txt")
    assert [f.logical for f in scan(tree)] == ["a.txt", "alias.txt", "sub/b.txt"]
    assert [f.logical for f in scan(tree / "a.txt")] == ["a.txt"]


def test_scan_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        scan(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="has no files"):
        scan(tmp_path / "empty")
    locked = tmp_path / "locked.txt"
    locked.write_text("x")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: every file is readable")
        with pytest.raises(InvalidInput, match=r"locked\.txt.*not readable"):
            scan(locked)
    finally:
        locked.chmod(0o644)
