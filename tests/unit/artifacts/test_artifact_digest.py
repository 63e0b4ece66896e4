"""Digest validation, and the BlobInfo value type."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from modelyard.artifacts import BlobInfo, validate_digest
from modelyard.core.errors import InvalidInput
from modelyard.testing.artifact_suite import INVALID_DIGESTS


def test_a_sha256_hex_digest_is_returned_unchanged() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert validate_digest(digest) == digest


@pytest.mark.parametrize("bad", [*INVALID_DIGESTS, "sha256:" + "a" * 64, "a" * 128])
def test_anything_else_is_invalid_input(bad: str) -> None:
    with pytest.raises(InvalidInput, match="sha256"):
        validate_digest(bad)


@pytest.mark.parametrize("bad", [None, 123, b"a" * 64])
def test_non_strings_are_invalid_input(bad: object) -> None:
    with pytest.raises(InvalidInput):
        validate_digest(bad)  # type: ignore[arg-type]


def test_blob_info_is_frozen() -> None:
    info = BlobInfo(digest="a" * 64, size=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.size = 2  # type: ignore[misc]
    assert info == BlobInfo("a" * 64, 1)
