"""Logical artifact paths: normalization, rejection, and that nothing escapes the root."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.artifacts import validate_logical_path
from modelyard.core.errors import InvalidInput


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("model.pkl", "model.pkl"),
        ("plots/roc.png", "plots/roc.png"),
        ("a//b", "a/b"),
        ("./a", "a"),
        ("a/./b/.//c", "a/b/c"),
        ("..a/b..", "..a/b.."),
        ("...", "..."),
        (".hidden/file", ".hidden/file"),
        ("dir with space/ü.txt", "dir with space/ü.txt"),
        ("ab:c/d:e", "ab:c/d:e"),
        ("x" * 255, "x" * 255),
        ("é" * 127, "é" * 127),
    ],
)
def test_valid_paths_are_normalized(raw: str, normalized: str) -> None:
    assert validate_logical_path(raw) == normalized


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        (".", "names no file"),
        ("./.", "names no file"),
        ("/etc/passwd", "absolute"),
        ("//server/share", "absolute"),
        ("C:\\Windows", "backslash"),
        ("C:/Windows", "drive letter"),
        ("c:file", "drive letter"),
        ("a:b", "drive letter"),
        ("\\\\server\\share", "backslash"),
        ("a\\b", "backslash"),
        ("..", "'..'"),
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("a/..", "'..'"),
        ("a/b/", "ends with a slash"),
        ("a\x00b", "NUL"),
        ("a\nb", "control character"),
        ("a\x7fb", "control character"),
        ("a\x85b", "control character"),
        ("x" * 256, "255 bytes"),
        ("é" * 128, "255 bytes"),
        ("a/" * 512 + "b", "1024 characters"),
        ("a\ud800b", "Unicode"),
    ],
)
def test_invalid_paths_are_rejected_with_the_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        validate_logical_path(raw)
    assert reason in str(excinfo.value)
    assert repr(raw)[:40] in str(excinfo.value)


def test_non_string_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="string"):
        validate_logical_path(b"a/b")  # type: ignore[arg-type]


_path_text = st.text(
    alphabet=st.sampled_from(["a", "b", ".", "/", "\\", ":", "C", " ", "\x00", "\n", "é"]),
    max_size=40,
)


@given(st.one_of(_path_text, st.text(max_size=80)))
def test_an_accepted_path_never_escapes_the_root(raw: str) -> None:
    try:
        path = validate_logical_path(raw)
    except InvalidInput:
        return
    parts = path.split("/")
    assert path
    assert not path.startswith("/")
    assert "\\" not in path
    assert all(part not in ("", ".", "..") for part in parts)
    joined = posixpath.normpath(posixpath.join("/root/dir", path))
    assert joined.startswith("/root/dir/")
    assert validate_logical_path(path) == path  # idempotent


_segment = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "Zs", "P", "S"]),
    min_size=1,
    max_size=20,
).filter(lambda s: s not in (".", "..") and "/" not in s and "\\" not in s)


@given(st.lists(_segment, min_size=1, max_size=8))
def test_clean_relative_paths_are_accepted_unchanged(segments: list[str]) -> None:
    path = "/".join(segments)
    if path[:2].endswith(":") and path[0].isascii() and path[0].isalpha():
        return  # looks like a drive letter: rejected on purpose
    assert validate_logical_path(path) == path
    assert validate_logical_path("./" + path.replace("/", "//")) == path
