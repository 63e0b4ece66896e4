"""Content-addressed artifact storage: blobs named by their SHA-256, and manifests.

Open a store with :func:`create_blob_store` (``file:///...`` or ``s3://bucket/prefix``);
every backend honours the contract of :class:`BlobStore`. Many small blobs travel in
one request body in the blob batch format (:func:`encode_header`, :func:`store_batch`).
"""

from __future__ import annotations

from modelyard.artifacts._base import BlobInfo, BlobStore, validate_digest
from modelyard.artifacts._batch import (
    BATCH_CONTENT_TYPE,
    MAX_BATCH_BLOBS,
    MAX_BATCH_BYTES,
    BatchEntry,
    encode_header,
    plan_batches,
    store_batch,
)
from modelyard.artifacts._factory import create_blob_store
from modelyard.artifacts._file import FileBlobStore
from modelyard.artifacts._manifest import Manifest, ManifestEntry
from modelyard.artifacts._paths import validate_logical_path
from modelyard.artifacts._s3 import S3BlobStore

__all__ = [
    "BATCH_CONTENT_TYPE",
    "MAX_BATCH_BLOBS",
    "MAX_BATCH_BYTES",
    "BatchEntry",
    "BlobInfo",
    "BlobStore",
    "FileBlobStore",
    "Manifest",
    "ManifestEntry",
    "S3BlobStore",
    "create_blob_store",
    "encode_header",
    "plan_batches",
    "store_batch",
    "validate_digest",
    "validate_logical_path",
]
