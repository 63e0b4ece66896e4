"""Find the files of a local dataset: a file, or every file under a directory.

Symlinks to files inside the tree are followed (their content is the file's); a symlink
that leads outside the tree, a symlinked directory, an unreadable file or anything that
is not a regular file is an error naming the path, so a version never silently misses
or leaks a file.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from modelyard.artifacts import validate_logical_path
from modelyard.core.errors import InvalidInput

TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def table_format(path: str) -> str | None:
    """``csv`` or ``parquet`` for file names with those suffixes (profiled), else None."""
    return TABLE_SUFFIXES.get(Path(path).suffix.lower())


@dataclass(frozen=True)
class LocalFile:
    """A file to add: where it is, the logical path it gets, and its stat identity."""

    path: Path
    logical: str
    size: int
    mtime_ns: int
    inode: int


def scan(source: Path) -> list[LocalFile]:
    """The files of ``source`` (a file or a directory), sorted by logical path.

    A single file gets its own name as logical path; files under a directory get their
    path relative to it.

    Raises:
        InvalidInput: ``source`` does not exist or is empty, or one of its entries is a
            symlink out of the tree, a symlinked directory, unreadable, or not a
            regular file.
    """
    source = Path(source)
    if not source.exists() and not source.is_symlink():
        raise InvalidInput(f"{source}: no such file or directory")
    root = source.resolve()
    if root.is_file():
        return [_local_file(root, root.parent, source.name)]
    if not root.is_dir():
        raise InvalidInput(f"{source}: not a regular file or directory")
    found: list[LocalFile] = []
    _walk(root, root, found)
    if not found:
        raise InvalidInput(f"{source}: the directory has no files")
    found.sort(key=lambda f: f.logical)
    return found


def _walk(root: Path, directory: Path, found: list[LocalFile]) -> None:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise InvalidInput(f"{directory}: cannot list the directory ({exc.strerror})") from exc
    for entry in entries:
        path = Path(entry.path)
        relative = path.relative_to(root).as_posix()
        if entry.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(root):
                raise InvalidInput(f"{path}: symlink points outside the dataset ({target})")
            if target.is_dir():
                raise InvalidInput(f"{path}: symlinked directories are not supported")
            found.append(_local_file(target, root, relative))
        elif entry.is_dir(follow_symlinks=False):
            _walk(root, path, found)
        else:
            found.append(_local_file(path, root, relative))


def _local_file(path: Path, root: Path, logical: str) -> LocalFile:
    try:
        st = path.stat()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from exc
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise InvalidInput(f"{path}: permission denied (the file is not readable)")
    try:
        logical = validate_logical_path(logical)
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc.message}") from exc
    return LocalFile(path, logical, st.st_size, st.st_mtime_ns, st.st_ino)
