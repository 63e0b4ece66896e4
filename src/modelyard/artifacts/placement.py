"""Placing local files straight into a ``file://`` blob store, without a server between.

A client on the machine that holds the server's ``file://`` artifact store (the
embedded default) writes the blobs itself, as DVC writes into its cache and MLflow's
client into a local artifact root: the server then only checks that the blobs a
manifest names exist with the right sizes, and every read verifies the digest as
always. Before writing, the client proves that the folder it sees is the server's
store: the server names the store's id (:func:`store_id`, a random id kept in the
store's ``store-id`` file) and the client finds the same id in the folder.

A blob is placed atomically, as :class:`~modelyard.artifacts.FileBlobStore` puts do:
into ``tmp/`` first, then renamed into ``sha256/xx/<digest>``. The content arrives
as the caller asks:

- ``copy`` (default): ``copy_file_range`` (the kernel copies, in-kernel or by reflink
  where the file system shares extents);
- ``link``: a reflink clone where the file system supports it (``FICLONE``: btrfs,
  XFS), else a hard link — no data is copied, and the blob shares the source's inode,
  so the file is made read-only (a later in-place edit of it would change the blob;
  reads would then refuse it by digest), else a copy.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from modelyard.artifacts._base import create_temp_file, validate_digest
from modelyard.core.errors import InvalidInput

STORE_ID_FILE = "store-id"
# The marker of a store encrypted at rest (artifacts/_envelope.py): never placed into.
ENCRYPTION_MARKER = "encryption.json"
FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
LinkMode = Literal["copy", "link"]
_COPY_CHUNK = 1 << 30


def store_id(root: Path) -> str:
    """The id of the ``file://`` store at ``root``, created on first use (race-safe)."""
    path = root / STORE_ID_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    fresh = secrets.token_hex(16)
    tmp = root / f".{STORE_ID_FILE}.{secrets.token_hex(4)}"
    tmp.write_text(fresh + "\n")
    try:
        os.link(tmp, path)  # fails if another process created it first
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def local_store(root: str, expected_id: str) -> Path | None:
    """``root`` if this process sees the store ``expected_id`` there and may write into
    it (its ``sha256/`` and ``tmp/`` folders), else ``None``."""
    path = Path(root)
    try:
        found = (path / STORE_ID_FILE).read_text().strip()
    except OSError:
        return None
    if found != expected_id or (path / ENCRYPTION_MARKER).exists():
        return None
    folders = (path / "sha256", path / "tmp")
    if not all(f.is_dir() and os.access(f, os.W_OK | os.X_OK) for f in folders):
        return None
    return path


@dataclass(frozen=True)
class Placed:
    """What placing one blob did: ``new`` (it was not stored yet) and how (``copy``,
    ``reflink``, ``hardlink``, or ``present`` when it was already there)."""

    new: bool
    how: str


def blob_path(root: Path, digest: str) -> Path:
    """Where the blob ``digest`` lives in the ``file://`` store at ``root``."""
    validate_digest(digest)
    return root / "sha256" / digest[:2] / digest


def has_blob(root: Path, digest: str, size: int) -> bool:
    """Whether the store holds a regular file of ``size`` bytes under ``digest``."""
    try:
        st = blob_path(root, digest).stat()
    except FileNotFoundError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == size and (size > 0 or st.st_size == 0)


def stage_copy(root: Path, source: Path, size: int) -> Path:
    """Copy ``source`` (``size`` bytes) into the store's ``tmp/``; the staged file's path.

    Raises:
        InvalidInput: the source shrank or cannot be read (it is named).
    """
    out, tmp = create_temp_file(root / "tmp", "place-")
    try:
        with out, open(source, "rb") as src:
            _copy_range(src.fileno(), out.fileno(), size, source)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def commit_staged(root: Path, staged: Path, digest: str, size: int) -> bool:
    """Rename a staged copy into place as blob ``digest``; False (and the copy dropped)
    when the store holds it already."""
    final = blob_path(root, digest)
    if has_blob(root, digest, size):
        staged.unlink(missing_ok=True)
        return False
    final.parent.mkdir(exist_ok=True)
    os.replace(staged, final)
    return True


def place(root: Path, source: Path, digest: str, size: int, mode: LinkMode = "copy") -> Placed:
    """Put the content of ``source`` (already hashed to ``digest``) into the store.

    Raises:
        InvalidInput: the source cannot be read or shrank while it was copied.
    """
    if has_blob(root, digest, size):
        return Placed(False, "present")
    if mode == "link":
        how = _link_into(root, source, digest, size)
        if how is not None:
            return Placed(True, how)
    staged = stage_copy(root, source, size)
    return Placed(commit_staged(root, staged, digest, size), "copy")


def _link_into(root: Path, source: Path, digest: str, size: int) -> str | None:
    """Reflink, else hard-link ``source`` into place; None when neither is possible."""
    out, tmp = create_temp_file(root / "tmp", "place-")
    try:
        with out, open(source, "rb") as src:
            import fcntl  # POSIX only; imported where used

            fcntl.ioctl(out.fileno(), FICLONE, src.fileno())
        return "reflink" if commit_staged(root, tmp, digest, size) else "present"
    except OSError:
        tmp.unlink(missing_ok=True)
    final = blob_path(root, digest)
    final.parent.mkdir(exist_ok=True)
    try:
        os.chmod(source, stat.S_IMODE(source.stat().st_mode) & ~0o222)
        os.link(source, final)
    except FileExistsError:
        return "present"
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES):
            raise InvalidInput(f"{source}: cannot link into the store ({exc.strerror})") from exc
        return None
    return "hardlink"


def _copy_range(src: int, dst: int, size: int, source: Path) -> None:
    left = size
    while left:
        try:
            copied = os.copy_file_range(src, dst, min(left, _COPY_CHUNK))
        except OSError as exc:
            if exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                _copy_read_write(src, dst, left, source)
                return
            raise InvalidInput(f"{source}: cannot copy ({exc.strerror})") from exc
        if copied == 0:
            raise InvalidInput(f"{source}: it shrank while it was added; add it again")
        left -= copied


def _copy_read_write(src: int, dst: int, left: int, source: Path) -> None:
    while left:
        chunk = os.read(src, min(left, 1 << 20))
        if not chunk:
            raise InvalidInput(f"{source}: it shrank while it was added; add it again")
        with contextlib.suppress(InterruptedError):
            os.write(dst, chunk)
        left -= len(chunk)
