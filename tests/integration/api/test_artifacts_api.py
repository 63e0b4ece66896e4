"""Uploading, listing and downloading a project's artifacts through the API."""

from __future__ import annotations

import hashlib

import pytest

from modelyard.testing.harness import Api


def test_round_trip_and_dedup(api: Api) -> None:
    admin = api.as_admin()
    body = b"weights" * 100_000
    url = "/api/v1/projects/default/artifacts/models/w.bin"
    put = api.client.put(url, content=body, headers=admin)
    assert put.status_code == 201
    assert put.json() == {
        "path": "models/w.bin",
        "digest": hashlib.sha256(body).hexdigest(),
        "size": len(body),
    }
    copy = api.client.put(
        "/api/v1/projects/default/artifacts/copy.bin", content=body, headers=admin
    )
    assert copy.json()["digest"] == put.json()["digest"]
    assert len(list(api.ctx.blobs.iter_digests())) == 1

    got = api.client.get(url, headers=admin)
    assert got.content == body
    assert got.headers["x-modelyard-digest"] == put.json()["digest"]
    listed = api.client.get("/api/v1/projects/default/artifacts?prefix=models/", headers=admin)
    assert [e["path"] for e in listed.json()] == ["models/w.bin"]
    assert api.client.delete(url, headers=admin).status_code == 200
    assert api.client.get(url, headers=admin).status_code == 404


def test_streamed_chunked_upload(api: Api) -> None:
    chunks = [bytes([i]) * 65536 for i in range(40)]
    response = api.client.put(
        "/api/v1/projects/default/artifacts/big.bin", content=iter(chunks), headers=api.as_admin()
    )
    assert response.status_code == 201
    assert response.json()["size"] == 40 * 65536


def test_digest_header_mismatch_stores_nothing(api: Api) -> None:
    headers = {**api.as_admin(), "x-modelyard-digest": hashlib.sha256(b"other").hexdigest()}
    response = api.client.put("/api/v1/projects/default/artifacts/a", content=b"x", headers=headers)
    assert response.status_code == 400
    assert "x-modelyard-digest" in response.json()["message"]
    assert list(api.ctx.blobs.iter_digests()) == []
    assert api.client.get("/api/v1/projects/default/artifacts", headers=api.as_admin()).json() == []


@pytest.mark.parametrize(
    "path", ["..%2Fetc%2Fpasswd", "a/../../b", "a%00b", "%2Fabs", "a%5Cb", "dir/"]
)
def test_path_traversal_is_rejected(api: Api, path: str) -> None:
    response = api.client.put(
        f"/api/v1/projects/default/artifacts/{path}", content=b"x", headers=api.as_admin()
    )
    assert response.status_code in (400, 404), response.text
    assert response.json()["error_code"] in ("INVALID_INPUT", "NOT_FOUND")
    assert list(api.ctx.blobs.iter_digests()) == []


def test_bad_digest_header_is_400(api: Api) -> None:
    headers = {**api.as_admin(), "x-modelyard-digest": "not-a-digest"}
    response = api.client.put("/api/v1/projects/default/artifacts/a", content=b"x", headers=headers)
    assert response.status_code == 400


def test_unknown_project_is_404(api: Api) -> None:
    response = api.client.get("/api/v1/projects/ghost/artifacts", headers=api.as_admin())
    assert response.status_code == 404
