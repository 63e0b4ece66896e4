"""Open a blob store from its URI: ``file:///abs/path`` or ``s3://bucket/prefix``."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlsplit

from modelyard.artifacts._base import BlobStore
from modelyard.core.errors import InvalidInput
from modelyard.core.registry import SchemeRegistry


def create_blob_store(
    uri: str, *, s3_endpoint_url: str | None = None, fsync: bool = False
) -> BlobStore:
    """Open the blob store a URI names.

    ``file:///abs/path`` opens a :class:`FileBlobStore` (creating the directory);
    ``s3://bucket/optional/prefix`` opens an :class:`S3BlobStore` on an existing bucket,
    with credentials, region and endpoint from boto3's usual sources (including the
    ``AWS_ENDPOINT_URL`` environment variable) unless ``s3_endpoint_url`` is given.

    Args:
        uri: The store's URI.
        s3_endpoint_url: The endpoint of an S3-compatible server, for ``s3://`` URIs.
        fsync: For ``file://`` stores, flush every blob to disk before a put returns
            (``MODELYARD_BLOB_FSYNC``); S3 acknowledges a put only once it is durable.

    Returns:
        The store; the caller closes it.

    Raises:
        InvalidInput: the URI is malformed or its scheme unsupported.
        Unavailable: an ``s3://`` URI is given but boto3 is not installed.
    """
    registry = SchemeRegistry[BlobStore]("artifact store")
    registry.register("file", partial(_open_file_store, fsync=fsync))
    registry.register("s3", partial(_open_s3_store, endpoint_url=s3_endpoint_url))
    return registry.create(uri)


def _open_file_store(uri: str, *, fsync: bool = False) -> BlobStore:
    from modelyard.artifacts._file import FileBlobStore

    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise InvalidInput(
            f"invalid file store URI {uri!r}: use file:///absolute/path (no host, query or "
            "fragment)"
        )
    path = unquote(parts.path)
    if not path.startswith("/") or "\x00" in path:
        raise InvalidInput(f"invalid file store URI {uri!r}: the path must be absolute")
    return FileBlobStore(Path(path), fsync=fsync)


def _open_s3_store(uri: str, *, endpoint_url: str | None) -> BlobStore:
    from modelyard.artifacts._s3 import S3BlobStore

    parts = urlsplit(uri)
    if not parts.netloc or parts.query or parts.fragment:
        raise InvalidInput(
            f"invalid S3 store URI {uri!r}: use s3://bucket or s3://bucket/prefix "
            "(no query or fragment)"
        )
    return S3BlobStore(parts.netloc, unquote(parts.path), endpoint_url=endpoint_url)
