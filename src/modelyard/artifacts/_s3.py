"""The ``s3://`` blob store: one object per blob, for any S3-compatible server.

Keys are ``<prefix>/sha256/ab/<digest>``. A put spools the content to an anonymous
local temporary file while hashing it (constant memory), then uploads it to its final
key with one PUT, or with a managed multipart upload for large blobs; either way the
object becomes visible only once complete. Content already stored is not uploaded
again.

boto3 is imported only when a store is built, so ``modelyard`` works without the
``[s3]`` extra for everyone who does not use S3.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.artifacts._base import (
    BlobInfo,
    BlobStore,
    Chunk,
    check_expected,
    validate_digest,
    write_hashing,
)
from modelyard.artifacts._paths import validate_logical_path
from modelyard.core.clock import Clock, SystemClock
from modelyard.core.errors import InvalidInput, NotFound, Unavailable

if TYPE_CHECKING:
    from boto3.s3.transfer import TransferConfig
    from mypy_boto3_s3 import S3Client

_MiB = 1 << 20
_AUTH_CODES = frozenset(
    {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
)


class S3BlobStore(BlobStore):
    """Blobs as objects in an S3 bucket, under an optional key prefix.

    The bucket must exist; it is never created. Credentials, region and endpoint come
    from the arguments or, when left out, from boto3's usual sources (environment
    variables such as ``AWS_ENDPOINT_URL``, ``~/.aws/config``, instance roles).

    Args:
        bucket: The bucket name.
        prefix: A key prefix such as ``team/artifacts``; empty for the bucket's root.
        endpoint_url: The S3 endpoint, for S3-compatible servers (SeaweedFS, MinIO).
        region_name: The AWS region.
        access_key_id: The access key; with ``secret_access_key``.
        secret_access_key: The secret key.
        client: A ready boto3 S3 client to use instead of building one; the caller
            keeps ownership (``close`` does not close it).
        multipart_threshold_bytes: Blobs at least this large are uploaded in parts.
        spool_dir: Where puts spool their content; the system temp dir by default.
        clock: The wall clock used to age incomplete multipart uploads.

    Raises:
        InvalidInput: the bucket or prefix is malformed.
        Unavailable: boto3 is not installed.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        client: S3Client | None = None,
        multipart_threshold_bytes: int = 32 * _MiB,
        spool_dir: Path | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise InvalidInput(f"invalid S3 bucket name {bucket!r}")
        if multipart_threshold_bytes < 5 * _MiB:
            raise InvalidInput("multipart_threshold_bytes must be at least 5 MiB (an S3 limit)")
        prefix = prefix.strip("/")
        self._bucket = bucket
        self._prefix = validate_logical_path(prefix) if prefix else ""
        self._key_root = f"{self._prefix}/sha256/" if self._prefix else "sha256/"
        self._spool_dir = spool_dir
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._owns_client = client is None
        self._client = client or _make_client(
            endpoint_url, region_name, access_key_id, secret_access_key
        )
        self._transfer_config = _transfer_config(multipart_threshold_bytes)

    @property
    def uri(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}" if self._prefix else f"s3://{self._bucket}"

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return self._bucket

    def key_for(self, digest: str) -> str:
        """The object key of the blob with this digest."""
        validate_digest(digest)
        return f"{self._key_root}{digest[:2]}/{digest}"

    def put_stream(
        self, chunks: Iterable[Chunk], *, expected_digest: str | None = None
    ) -> BlobInfo:
        if expected_digest is not None:
            validate_digest(expected_digest)
        with tempfile.TemporaryFile(dir=self._spool_dir) as spool:
            info = write_hashing(chunks, spool)
            check_expected(info, expected_digest, self.uri)
            key = self.key_for(info.digest)
            if self._head(key) == info.size:
                return info
            spool.seek(0)
            with self._s3_errors("upload"):
                self._client.upload_fileobj(spool, self._bucket, key, Config=self._transfer_config)
        return info

    def exists(self, digest: str) -> bool:
        if self._head(self.key_for(digest)) is not None:
            return True
        self._check_bucket()
        return False

    def size(self, digest: str) -> int:
        size = self._head(self.key_for(digest))
        if size is None:
            self._check_bucket()
            raise self._not_found(digest)
        return size

    def _open_chunks(self, digest: str, chunk_size: int) -> tuple[int, Iterator[bytes]]:
        return self.size(digest), self._get_chunks(digest, chunk_size)

    def _get_chunks(self, digest: str, chunk_size: int) -> Iterator[bytes]:
        with self._s3_errors("download"):
            try:
                response = self._client.get_object(Bucket=self._bucket, Key=self.key_for(digest))
            except Exception as exc:
                if _error_code(exc) in ("NoSuchKey", "404"):
                    raise self._not_found(digest) from None  # deleted since size()
                raise
            body = response["Body"]
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

    def delete(self, digest: str) -> None:
        key = self.key_for(digest)
        with self._s3_errors("delete"):
            self._client.delete_object(Bucket=self._bucket, Key=key)

    def iter_digests(self) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        with self._s3_errors("list"):
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self._key_root):
                for obj in page.get("Contents", []):
                    fan_out, _, name = obj.get("Key", "")[len(self._key_root) :].partition("/")
                    if name.startswith(fan_out) and len(fan_out) == 2 and _is_digest(name):
                        yield name

    def remove_stale_partials(self, older_than_s: float) -> int:
        if older_than_s < 0:
            raise InvalidInput(f"older_than_s must be >= 0, got {older_than_s}")
        cutoff = datetime.fromtimestamp(self._clock.now(), tz=UTC) - timedelta(seconds=older_than_s)
        paginator = self._client.get_paginator("list_multipart_uploads")
        removed = 0
        with self._s3_errors("abort stale uploads"):
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self._key_root):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] > cutoff:
                        continue
                    if self._abort(upload["Key"], upload["UploadId"]):
                        removed += 1
        return removed

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _abort(self, key: str, upload_id: str) -> bool:
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except Exception as exc:
            if _error_code(exc) in ("NoSuchUpload", "404"):
                return False  # completed or aborted concurrently
            raise
        return True

    def _head(self, key: str) -> int | None:
        with self._s3_errors("stat"):
            try:
                return self._client.head_object(Bucket=self._bucket, Key=key)["ContentLength"]
            except Exception as exc:
                if _error_code(exc) in ("404", "NoSuchKey"):
                    return None
                raise

    def _check_bucket(self) -> None:
        # HEAD answers a bare 404 for a missing key and a missing bucket alike.
        with self._s3_errors("check bucket"):
            try:
                self._client.head_bucket(Bucket=self._bucket)
            except Exception as exc:
                if _error_code(exc) in ("404", "NoSuchBucket"):
                    raise self._no_bucket() from None
                raise

    def _no_bucket(self) -> Unavailable:
        return Unavailable(
            f"S3 bucket {self._bucket!r} does not exist (at {self._endpoint()}); "
            f"create it before using {self.uri}"
        )

    def _not_found(self, digest: str) -> NotFound:
        return NotFound(f"blob {digest} not found in {self.uri}")

    def _endpoint(self) -> str:
        return str(self._client.meta.endpoint_url)

    @contextmanager
    def _s3_errors(self, action: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, NoCredentialsError, PartialCredentialsError

        try:
            yield
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise Unavailable(f"no usable S3 credentials for {self.uri}: {exc}") from exc
        except BotoCoreError as exc:
            raise Unavailable(
                f"cannot {action} in {self.uri}: S3 endpoint {self._endpoint()} failed: {exc}"
            ) from exc
        except Exception as exc:
            code = _error_code(exc)
            if code is None:
                raise
            if code == "NoSuchBucket":
                raise self._no_bucket() from exc
            hint = ": check the credentials" if code in _AUTH_CODES else ""
            raise Unavailable(
                f"cannot {action} in {self.uri}: S3 endpoint {self._endpoint()} "
                f"answered {code}{hint}"
            ) from exc


def _error_code(exc: Exception) -> str | None:
    """The S3 error code of a botocore ClientError, None for any other exception."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    if code:
        return str(code)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(status) if status is not None else "unknown"


def _is_digest(name: str) -> bool:
    try:
        validate_digest(name)
    except InvalidInput:
        return False
    return True


def _make_client(
    endpoint_url: str | None,
    region_name: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
) -> S3Client:
    try:
        import boto3.session
        from botocore.config import Config
    except ImportError as exc:
        raise Unavailable(
            "s3:// artifact stores need boto3: install modelyard with the [s3] extra"
        ) from exc
    session = boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region_name,
    )
    config = Config(
        connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
    )
    # endpoint_url=None lets botocore apply AWS_ENDPOINT_URL(_S3) and the config files.
    return session.client("s3", endpoint_url=endpoint_url, config=config)


def _transfer_config(multipart_threshold_bytes: int) -> TransferConfig:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=multipart_threshold_bytes,
        multipart_chunksize=max(8 * _MiB, multipart_threshold_bytes // 4),
        max_concurrency=4,
    )
