"""Logical artifact paths: what a user may name a file inside a run or model version.

A logical path (``plots/roc.png``) is joined onto a local directory when artifacts are
downloaded, so it must never reach outside that directory, whatever the user sent.
"""

from __future__ import annotations

import re
import unicodedata

from modelyard.core.errors import InvalidInput

MAX_PATH_CHARS = 1024
MAX_COMPONENT_BYTES = 255
_DRIVE_RE = re.compile(r"[A-Za-z]:")


def validate_logical_path(path: str) -> str:
    """Normalize a user-supplied artifact path to a clean, relative POSIX path.

    Empty and ``.`` components are dropped, so ``./a//b`` becomes ``a/b``. The result
    has no ``..`` component, does not start with ``/`` and joins safely onto any
    directory.

    Args:
        path: The path as the user sent it.

    Returns:
        The normalized path; normalizing it again returns it unchanged.

    Raises:
        InvalidInput: the path is empty or only ``.``; is absolute (``/x``, ``C:\\x``,
            ``\\\\server``); contains a ``..`` component, a backslash, a NUL byte or
            another control character; ends with a slash; has a component longer than
            255 UTF-8 bytes; or is longer than 1024 characters. The message names the
            path and the reason.
    """
    if not isinstance(path, str):
        raise InvalidInput(f"invalid artifact path {path!r}: must be a string")
    reason = _rejection(path)
    if reason is not None:
        raise InvalidInput(f"invalid artifact path {path!r}: {reason}")
    return "/".join(part for part in path.split("/") if part not in ("", "."))


def _rejection(path: str) -> str | None:
    if path == "":
        return "it is empty"
    if len(path) > MAX_PATH_CHARS:
        return f"it is longer than {MAX_PATH_CHARS} characters"
    if "\x00" in path:
        return "it contains a NUL byte"
    if any(unicodedata.category(ch) == "Cc" for ch in path):
        return "it contains a control character"
    if "\\" in path:
        return "it contains a backslash (use '/' to separate directories)"
    if path.startswith("/"):
        return "it is absolute (it must be relative, like 'plots/roc.png')"
    if _DRIVE_RE.match(path):
        return "it starts with a drive letter (it must be relative, like 'plots/roc.png')"
    if path.endswith("/"):
        return "it ends with a slash (it must name a file, not a directory)"
    parts = path.split("/")
    if ".." in parts:
        return "it contains a '..' component"
    if all(part in ("", ".") for part in parts):
        return "it names no file"
    for part in parts:
        try:
            encoded = part.encode("utf-8")
        except UnicodeEncodeError:
            return "it is not valid Unicode"
        if len(encoded) > MAX_COMPONENT_BYTES:
            return f"a component is longer than {MAX_COMPONENT_BYTES} bytes"
    return None
