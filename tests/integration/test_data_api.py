"""The dataset API in process: blobs, versions, dedupe, diff, download, permissions, lineage."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from modelyard.artifacts import BlobInfo, FileBlobStore
from modelyard.client import ModelyardClient
from modelyard.config import Settings
from modelyard.core.entities import Role
from modelyard.core.errors import InvalidInput, NotFound, PermissionDenied
from modelyard.data import add as add_module
from modelyard.data.add import add_dataset, get_dataset
from modelyard.server import build_context
from modelyard.server.routes import data as data_routes
from modelyard.testing.harness import Api


def _spy(
    monkeypatch: pytest.MonkeyPatch, client: ModelyardClient, method: str
) -> list[tuple[object, ...]]:
    """Record the arguments of every call to ``client.<method>`` (which still runs)."""
    calls: list[tuple[object, ...]] = []
    real = getattr(client, method)

    def recording(*args: object) -> object:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(client, method, recording)
    return calls


def _client(api: Api, token: str | None = None) -> ModelyardClient:
    return api.rest_client(token)


def _write_table(path: Path, rows: int, offset: float = 0.0) -> None:
    frame = pd.DataFrame(
        {
            "amount": [float(i) + offset for i in range(rows)],
            "city": ["paris" if i % 3 else "rome" for i in range(rows)],
        }
    )
    frame.to_parquet(path)


def test_add_dedupe_show_diff_get(api: Api, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _write_table(src / "t.parquet", 100)
    (src / "notes.txt").write_text("hello")
    cache = tmp_path / "hashes.sqlite"
    with _client(api) as client:
        first = add_dataset(client, "default", src, "credit", message="one", cache_path=cache)
        assert first.created
        assert first.version.ref == "credit@v1"
        assert first.uploaded_files == 2
        again = add_dataset(client, "default", src, "credit", cache_path=cache)
        assert not again.created
        assert again.version.version == 1
        assert again.uploaded_files == 0
        _write_table(src / "t.parquet", 120, offset=5)
        (src / "extra.txt").write_text("new")
        second = add_dataset(client, "default", src, "credit", cache_path=cache)
        assert second.version.ref == "credit@v2"
        assert second.uploaded_files == 2  # notes.txt is stored already

        shown = client.get_dataset_version("default", "credit@v2")
        table = shown.profile["tables"]["t.parquet"]
        assert table["num_rows"] == 120
        assert table["columns"]["amount"]["min"] == 5.0
        assert [v.version for v in client.list_dataset_versions("default", "credit")] == [2, 1]
        assert [d.latest_version for d in client.list_datasets("default")] == [2]

        diff = client.diff_datasets("default", "credit@v1", "credit@latest")
        assert [f["path"] for f in diff["added"]] == ["extra.txt"]
        assert [c["path"] for c in diff["changed"]] == ["t.parquet"]
        assert diff["unchanged"] == 1
        assert diff["tables"][0]["rows"] == [100, 120]

        out = tmp_path / "out"
        get_dataset(client, client.get_dataset_version("default", "credit@v1"), out)
        assert (out / "notes.txt").read_text() == "hello"
        assert len(pd.read_parquet(out / "t.parquet")) == 100


def test_bad_references_and_names_are_clear_errors(api: Api, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with _client(api) as client:
        for name in ("a/b", "a@b", ""):
            with pytest.raises(InvalidInput, match="dataset name"):
                add_dataset(client, "default", tmp_path / "f.txt", name)
        with pytest.raises(InvalidInput, match="no such file"):
            add_dataset(client, "default", tmp_path / "missing", "x")
        add_dataset(client, "default", tmp_path / "f.txt", "f")
        with pytest.raises(NotFound, match=r"no version v7 \(the latest is v1\)"):
            client.get_dataset_version("default", "f@v7")
        with pytest.raises(NotFound, match="dataset 'nope' does not exist"):
            client.get_dataset_version("default", "nope@latest")
        with pytest.raises(InvalidInput, match="invalid dataset version"):
            client.get_dataset_version("default", "f@seven")
    response = api.client.get(
        "/api/v1/projects/default/datasets/f/versions/vx", headers=api.as_admin()
    )
    assert response.status_code == 400
    assert "vx" in response.json()["message"]


def test_commit_refuses_blobs_that_were_not_uploaded(api: Api) -> None:
    body = {"files": [{"path": "a.txt", "digest": "a" * 64, "size": 3}]}
    response = api.client.post(
        "/api/v1/projects/default/datasets/d/versions", json=body, headers=api.as_admin()
    )
    assert response.status_code == 400
    assert "'a.txt'" in response.json()["message"]
    assert "not uploaded" in response.json()["message"]
    assert api.ctx.store.data.list_datasets("default") == []


def test_blob_upload_is_verified_against_its_digest(api: Api) -> None:
    good = hashlib.sha256(b"data").hexdigest()
    url = "/api/v1/projects/default/blobs/"
    bad = api.client.put(url + good, content=b"other", headers=api.as_admin())
    assert bad.status_code == 400
    missing = api.client.post(
        url + "missing", json={"digests": [good, good]}, headers=api.as_admin()
    )
    assert missing.json() == {"missing": [good]}
    assert api.client.put(url + good, content=b"data", headers=api.as_admin()).status_code == 201
    missing = api.client.post(url + "missing", json={"digests": [good]}, headers=api.as_admin())
    assert missing.json() == {"missing": []}
    invalid = api.client.post(url + "missing", json={"digests": ["xyz"]}, headers=api.as_admin())
    assert invalid.status_code == 400


def test_viewer_reads_and_gets_but_cannot_add(api: Api, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with _client(api) as admin:
        add_dataset(admin, "default", tmp_path / "f.txt", "f")
    with _client(api, api.token_for("vera", Role.VIEWER)) as viewer:
        version = viewer.get_dataset_version("default", "f")
        get_dataset(viewer, version, tmp_path / "out")
        assert (tmp_path / "out" / "f.txt").read_text() == "x"
        with pytest.raises(PermissionDenied):
            add_dataset(viewer, "default", tmp_path / "f.txt", "g")
    with _client(api, api.token_for("ed", Role.EDITOR)) as editor:
        assert add_dataset(editor, "default", tmp_path / "f.txt", "g").created


def test_lineage_dataset_to_run_to_model_version(api: Api, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    caller = api.ctx.auth.authenticate(api.admin_token)
    run = api.ctx.tracking.create_run(caller, 0, name="train")
    with _client(api) as client:
        add_dataset(client, "default", tmp_path / "f.txt", "raw")
        client.record_dataset_input("default", "raw@v1", run.id)
        client.record_dataset_input("default", "raw@v1", run.id)  # idempotent
        (tmp_path / "g.txt").write_text("y")
        add_dataset(client, "default", tmp_path / "g.txt", "features", run_id=run.id)
    # A registered version derives its `produced` edge from source_run_id.
    api.ctx.store.registry.create_version(
        "default", "churn", source_run_id=run.id, source_uri="", flavor="sklearn",
        signature_json="", package_digest="c" * 64, files=[], user="admin",
    )  # fmt: skip
    response = api.client.get(
        "/api/v1/lineage/model/churn/1", params={"direction": "up"}, headers=api.as_admin()
    )
    assert response.status_code == 200, response.text
    graph = response.json()
    labels = {n["key"]: n["label"] for n in graph["nodes"]}
    edges = {(labels[e["src"]], e["type"], labels[e["dst"]]) for e in graph["edges"]}
    run_label = f"train ({run.id[:8]})"
    assert edges == {("raw@v1", "input", run_label), (run_label, "produced", "churn/1")}
    down = api.client.get(
        "/api/v1/projects/default/lineage/dataset/raw@v1", headers=api.as_admin()
    ).json()
    down_labels = {n["label"] for n in down["nodes"]}
    assert {"raw@v1", run_label, "features@v1", "churn/1"} <= down_labels
    bad = api.client.get("/api/v1/lineage/model/churn", headers=api.as_admin())
    assert bad.status_code == 400
    missing = api.client.get("/api/v1/lineage/dataset/nope@v1", headers=api.as_admin())
    assert missing.status_code == 404


def test_lineage_needs_a_role_in_the_project(api: Api) -> None:
    api.client.post("/api/v1/projects", json={"name": "other"}, headers=api.as_admin())
    caller = api.ctx.auth.authenticate(api.admin_token)
    run = api.ctx.tracking.create_run(caller, 0, name="train")
    stranger = api.auth(api.token_for("sam", Role.EDITOR, project="other"))
    response = api.client.get(f"/api/v1/lineage/run/{run.id}", headers=stranger)
    assert response.status_code == 403


def test_many_small_files_go_in_batches_verified_blob_by_blob(api: Api, tmp_path: Path) -> None:
    url = "/api/v1/projects/default/blobs/batch"
    good = [b"alpha", b"beta" * 1000, b""]
    digests = [hashlib.sha256(b).hexdigest() for b in good]
    header = {"blobs": [{"digest": d, "size": len(b)} for d, b in zip(digests, good, strict=True)]}

    def body(head: dict[str, object], payload: bytes) -> bytes:
        return json.dumps(head).encode() + b"\n" + payload

    r = api.client.post(url, content=body(header, b"".join(good)), headers=api.as_admin())
    assert r.status_code == 201, r.text
    assert [b["digest"] for b in r.json()["stored"]] == digests
    assert all(api.ctx.blobs.exists(d) for d in digests)
    # A lie about one blob's content stores nothing of it, and says which.
    liar = hashlib.sha256(b"other").hexdigest()
    bad = {"blobs": [{"digest": liar, "size": 5}]}
    r = api.client.post(url, content=body(bad, b"alpha"), headers=api.as_admin())
    assert r.status_code == 400
    assert liar in r.json()["message"]
    assert not api.ctx.blobs.exists(liar)
    for payload, fragment in [
        (b"no header line", "JSON header line"),
        (b'{"blobs": [{"digest": "xyz", "size": 1}]}\n' + b"x", "invalid blob digest"),
        (b'{"blobs": 3}\n', "malformed header"),
        (body(header, b"short"), "declares"),
    ]:
        r = api.client.post(url, content=payload, headers=api.as_admin())
        assert r.status_code == 400
        assert fragment in r.json()["message"]
    huge = api.client.post(
        url, content=b"x", headers={**api.as_admin(), "content-length": str(1 << 30)}
    )
    assert huge.status_code in (400, 413)
    # data add batches small files: 40 files, one version, every blob stored.
    src = tmp_path / "many"
    src.mkdir()
    for i in range(40):
        (src / f"f{i}.txt").write_text(f"file {i}\n" * 100)
    with _client(api) as client:
        result = add_dataset(
            client, "default", src, "many", cache_path=tmp_path / "h.sqlite", direct=False
        )
    assert result.uploaded_files == 40
    assert len(result.version.files) == 40
    assert all(api.ctx.blobs.exists(f.digest) for f in result.version.files)


def test_a_batch_streamed_without_a_length_is_cut_at_the_limit(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_routes, "MAX_BATCH_BYTES", 4096)
    blob = b"y" * 8192
    header = json.dumps({"blobs": [{"digest": hashlib.sha256(blob).hexdigest(), "size": 8192}]})

    def chunked() -> Iterator[bytes]:  # no content-length: the server counts as it reads
        yield header.encode() + b"\n"
        yield blob[:4096]
        yield blob[4096:]

    r = api.client.post(
        "/api/v1/projects/default/blobs/batch", content=chunked(), headers=api.as_admin()
    )
    assert r.status_code == 413
    assert not api.ctx.blobs.exists(hashlib.sha256(blob).hexdigest())


def test_the_blob_fsync_setting_reaches_the_artifact_store(tmp_path: Path) -> None:
    for flag in (True, False):
        ctx = build_context(Settings(home=tmp_path / f"home-{flag}", blob_fsync=flag))
        try:
            assert isinstance(ctx.blobs, FileBlobStore)
            assert ctx.blobs.fsync is flag
        finally:
            ctx.store.close()


def test_uploads_start_while_later_files_are_still_hashed(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(add_module, "OFFER_BYTES", 10_000)
    src = tmp_path / "piped"
    src.mkdir()
    for i in range(20):
        (src / f"f{i:02d}.bin").write_bytes(bytes([i]) * 4000)
    (src / "copy.bin").write_bytes(bytes([0]) * 4000)  # the same content as f00.bin
    with _client(api) as client:
        calls = _spy(monkeypatch, client, "missing_blobs")
        result = add_dataset(client, "default", src, "piped", direct=False)
        asked = [len(digests) for _, digests in calls]  # type: ignore[arg-type]
        assert len(asked) > 1  # one question per group of about OFFER_BYTES
        assert sum(asked) == 20  # each content once
        assert (result.uploaded_files, result.version.file_count) == (20, 21)
        # Without a hash cache every file is read again; nothing is uploaded or created.
        again = add_dataset(client, "default", src, "piped", direct=False)
        assert (again.created, again.uploaded_files, again.hashed_files) == (False, 0, 21)


def test_a_failed_upload_fails_the_add_and_commits_nothing(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "broken"
    src.mkdir()
    (src / "a.bin").write_bytes(b"a" * 100)
    with _client(api) as client:

        def refuse(*_args: object) -> None:
            raise InvalidInput("the server said no")

        monkeypatch.setattr(client, "put_blob_batch", refuse)
        with pytest.raises(InvalidInput, match="the server said no"):
            add_dataset(client, "default", src, "broken", direct=False)
    assert api.ctx.store.data.list_datasets("default") == []


def test_a_big_new_file_is_uploaded_in_the_same_pass_as_it_is_hashed(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(add_module, "ONE_PASS_BYTES", 50_000)
    src = tmp_path / "big"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(200_000))
    (src / "small.bin").write_bytes(b"s" * 1000)
    for f in src.iterdir():  # older than the cache's same-second guard
        os.utime(f, (f.stat().st_atime - 10, f.stat().st_mtime - 10))
    cache = tmp_path / "hashes.sqlite"
    with _client(api) as client:
        calls = _spy(monkeypatch, client, "put_blob_hashing")
        result = add_dataset(client, "default", src, "big", cache_path=cache, direct=False)
        sent = [source.name for _, source, _ in calls]  # type: ignore[attr-defined]
        assert sent == ["big.bin"]
        assert (result.uploaded_files, result.hashed_files) == (2, 2)
        want = hashlib.sha256((src / "big.bin").read_bytes()).hexdigest()
        entry = next(f for f in result.version.files if f.path == "big.bin")
        assert entry.digest == want
        assert api.ctx.blobs.exists(want)
        # Unchanged: the cache vouches for it, nothing is read or sent again.
        again = add_dataset(client, "default", src, "big", cache_path=cache, direct=False)
        assert (again.created, again.uploaded_files, len(calls)) == (False, 0, 1)
        # Without a hash cache the file is hashed first and not sent (the server has it).
        plain = add_dataset(client, "default", src, "big", direct=False)
        assert (plain.uploaded_files, len(calls)) == (0, 1)


def test_a_one_pass_upload_that_disagrees_with_the_local_hash_commits_nothing(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(add_module, "ONE_PASS_BYTES", 10)
    src = tmp_path / "moving"
    src.mkdir()
    (src / "a.bin").write_bytes(b"a" * 100)
    with _client(api) as client:
        real = client.put_blob_hashing

        def changed(project: str, source: Path, size: int) -> tuple[BlobInfo, str]:
            info, _ = real(project, source, size)
            return info, "0" * 64  # what the client read differs from what was stored

        monkeypatch.setattr(client, "put_blob_hashing", changed)
        with pytest.raises(InvalidInput, match="changed while it was being added"):
            add_dataset(
                client, "default", src, "moving", cache_path=tmp_path / "h.sqlite", direct=False
            )
    assert api.ctx.store.data.list_datasets("default") == []


def test_posting_a_blob_returns_the_digest_the_server_computed(api: Api) -> None:
    body = b"content the client did not hash"
    response = api.client.post(
        "/api/v1/projects/default/blobs", content=body, headers=api.as_admin()
    )
    assert response.status_code == 201
    assert response.json() == {"digest": hashlib.sha256(body).hexdigest(), "size": len(body)}
