"""Opening blob stores by URI, without touching the network."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelyard.artifacts import FileBlobStore, S3BlobStore, create_blob_store
from modelyard.core.errors import InvalidInput, Unavailable


def test_file_uri_opens_and_creates_a_file_store(tmp_path: Path) -> None:
    root = tmp_path / "new" / "store"
    with create_blob_store(root.as_uri()) as store:
        assert isinstance(store, FileBlobStore)
        assert store.uri == root.as_uri()
        info = store.put_bytes(b"x")
    with create_blob_store(f"file://localhost{root}") as again:
        assert again.read_bytes(info.digest) == b"x"


def test_file_uri_path_is_percent_decoded(tmp_path: Path) -> None:
    root = tmp_path / "with space"
    with create_blob_store(root.as_uri()) as store:
        assert isinstance(store, FileBlobStore)
        assert store.root == root
    assert root.is_dir()


@pytest.mark.parametrize(
    "uri", ["file:relative/path", "file://otherhost/x", "file:///x?q=1", "file:///x#frag"]
)
def test_bad_file_uris_are_invalid_input(uri: str) -> None:
    with pytest.raises(InvalidInput, match="file"):
        create_blob_store(uri)


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match=r"file://, s3://"):
        create_blob_store("gs://bucket/x")


@pytest.mark.parametrize(
    ("uri", "bucket", "store_uri", "key_prefix"),
    [
        ("s3://bucket", "bucket", "s3://bucket", "sha256/"),
        ("s3://bucket/", "bucket", "s3://bucket", "sha256/"),
        ("s3://bucket/team/art/", "bucket", "s3://bucket/team/art", "team/art/sha256/"),
    ],
)
def test_s3_uri_names_bucket_and_prefix(
    uri: str, bucket: str, store_uri: str, key_prefix: str
) -> None:
    with create_blob_store(uri, s3_endpoint_url="http://127.0.0.1:1") as store:
        assert isinstance(store, S3BlobStore)
        assert store.bucket == bucket
        assert store.uri == store_uri
        assert store.key_for("a" * 64) == f"{key_prefix}aa/{'a' * 64}"


@pytest.mark.parametrize("uri", ["s3://", "s3:///prefix", "s3://b/../x", "s3://b/p?x=1"])
def test_bad_s3_uris_are_invalid_input(uri: str) -> None:
    with pytest.raises(InvalidInput):
        create_blob_store(uri, s3_endpoint_url="http://127.0.0.1:1")


def test_small_multipart_threshold_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="5 MiB"):
        S3BlobStore("bucket", multipart_threshold_bytes=1024)


def test_s3_without_boto3_is_unavailable_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.setitem(sys.modules, "boto3.session", None)
    with pytest.raises(Unavailable, match=r"\[s3\] extra"):
        create_blob_store("s3://bucket/prefix")


def test_importing_artifacts_does_not_import_boto3() -> None:
    import subprocess

    code = "import sys, modelyard.artifacts; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
