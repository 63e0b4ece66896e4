"""/api/v1/projects/{project}/datasets: versioned datasets; /blobs: content-addressed uploads.

``data add`` asks ``blobs/missing`` which contents the server lacks, PUTs only those to
``blobs/{digest}`` (verified against the digest while streaming) or, for a big file it
has not hashed yet, POSTs it to ``blobs`` (the server answers the digest it computed),
and commits the version last, in one transaction, so an interrupted add leaves no
version behind.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard.artifacts import (
    MAX_BATCH_BYTES,
    store_batch,
    validate_digest,
    validate_logical_path,
)
from modelyard.auth import PROJECT_EDITOR, PROJECT_VIEWER, RUN_EDITOR, Principal
from modelyard.core.datasets import parse_version, validate_dataset_name
from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import IntegrityError, InvalidInput
from modelyard.server._context import app_context
from modelyard.server._data_schemas import (
    BlobBatchOut,
    BlobLocationOut,
    BlobOut,
    DatasetOut,
    DatasetVersionOut,
    DiffOut,
    InputRecord,
    MissingBlobsIn,
    MissingBlobsOut,
    VersionCommit,
)
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server.routes.artifacts import (
    DIGEST_HEADER,
    consume_request_body,
    download_from_namespace,
    stream_request_into,
)

api = ApiRouter("/api/v1/projects/{project}", tags=["data"])


def _ref(name: str, version: str) -> str:
    validate_dataset_name(name)
    number = parse_version(version)
    return name if number is None else f"{name}@v{number}"


@api.route("GET", "/blobs/location", permission=PROJECT_EDITOR, action="blob.location")
def blob_location(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> BlobLocationOut:
    """Where a client on this machine may write blobs itself (a plain ``file://`` store),
    or ``{"kind": "server"}``: then blobs go through the upload routes."""
    found = app_context(request).data.blob_location(caller, project)
    if found is None:
        return BlobLocationOut(kind="server")
    return BlobLocationOut(kind="file", root=found[0], store_id=found[1])


@api.route("POST", "/blobs/missing", permission=PROJECT_EDITOR, action="blob.missing")
def missing_blobs(
    project: str,
    body: MissingBlobsIn,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> MissingBlobsOut:
    missing = app_context(request).data.missing_blobs(caller, project, body.digests)
    return MissingBlobsOut(missing=missing)


@api.route("PUT", "/blobs/{digest}", permission=PROJECT_EDITOR, action="blob.put", status_code=201)
async def put_blob(project: str, digest: str, request: Request) -> BlobOut:
    """Store a blob whose content must hash to ``digest`` (nothing is stored otherwise)."""
    ctx = app_context(request)
    validate_digest(digest)
    header = request.headers.get(DIGEST_HEADER)
    if header and header != digest:
        raise InvalidInput(f"{DIGEST_HEADER} header {header!r} differs from the URL digest")
    set_audit_target(request, f"blob:{digest}")
    await anyio.to_thread.run_sync(ctx.store.auth.get_project, project)
    try:
        info = await stream_request_into(request, ctx.blobs, digest)
    except IntegrityError as exc:
        raise InvalidInput(f"body does not hash to {digest}: {exc}") from exc
    return BlobOut(digest=info.digest, size=info.size)


@api.route("POST", "/blobs", permission=PROJECT_EDITOR, action="blob.put", status_code=201)
async def post_blob(project: str, request: Request) -> BlobOut:
    """Store a blob whose digest the client does not know yet: the server computes it
    while storing and answers it (``data add`` sends a big new file in the same pass as
    it hashes it, and checks the answer against its own digest)."""
    ctx = app_context(request)
    await anyio.to_thread.run_sync(ctx.store.auth.get_project, project)
    info = await stream_request_into(request, ctx.blobs, None)
    set_audit_target(request, f"blob:{info.digest}")
    return BlobOut(digest=info.digest, size=info.size)


@api.route(
    "POST", "/blobs/batch", permission=PROJECT_EDITOR, action="blob.put_batch", status_code=201
)  # fmt: skip
async def put_blob_batch(project: str, request: Request) -> BlobBatchOut:
    """Store many small blobs from one body (see :mod:`modelyard.artifacts._batch`)."""
    ctx = app_context(request)
    declared = request.headers.get("content-length")
    length = int(declared) if declared is not None and declared.isdigit() else None
    if length is not None and length > MAX_BATCH_BYTES:
        raise StarletteHTTPException(413, f"a blob batch is at most {MAX_BATCH_BYTES} bytes")
    await anyio.to_thread.run_sync(ctx.store.auth.get_project, project)
    stored = await consume_request_body(
        request, lambda chunks: store_batch(ctx.blobs, chunks, length), max_bytes=MAX_BATCH_BYTES
    )
    set_audit_target(request, f"blobs:{len(stored)}")
    return BlobBatchOut(stored=[BlobOut(digest=i.digest, size=i.size) for i in stored])


@api.route("GET", "/datasets", permission=PROJECT_VIEWER, action="dataset.list")
def list_datasets(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> list[DatasetOut]:
    return [DatasetOut.of(d) for d in app_context(request).data.list_datasets(caller, project)]


@api.route("GET", "/datasets/{name}/versions", permission=PROJECT_VIEWER, action="dataset.versions")
def list_versions(
    project: str, name: str, request: Request, caller: Principal = Depends(current_principal)
) -> list[DatasetVersionOut]:
    versions = app_context(request).data.list_versions(caller, project, name)
    return [DatasetVersionOut.of(v) for v in versions]


@api.route(
    "POST", "/datasets/{name}/versions", permission=PROJECT_EDITOR, action="dataset.commit",
    status_code=201,
)  # fmt: skip
def commit_version(
    project: str,
    name: str,
    body: VersionCommit,
    request: Request,
    response: Response,
    caller: Principal = Depends(current_principal),
) -> DatasetVersionOut:
    """Commit a version from uploaded blobs; 200 and ``created: false`` if unchanged."""
    files = [ArtifactEntry(f.path, f.digest, f.size) for f in body.files]
    version, created = app_context(request).data.commit_version(
        caller, project, name, files, message=body.message, profile=body.profile,
        run_id=body.run_id,
    )  # fmt: skip
    set_audit_target(request, f"dataset:{version.ref}{'' if created else ' (unchanged)'}")
    if not created:
        response.status_code = 200
    return DatasetVersionOut.of(version, created)


@api.route(
    "GET", "/datasets/{name}/versions/{version}", permission=PROJECT_VIEWER, action="dataset.get"
)
def get_version(
    project: str,
    name: str,
    version: str,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> DatasetVersionOut:
    """A version (``v2``, ``2`` or ``latest``) with its files and profile."""
    found = app_context(request).data.get_version(caller, project, _ref(name, version))
    return DatasetVersionOut.of(found)


@api.route(
    "GET",
    "/datasets/{name}/versions/{version}/files/{path:path}",
    permission=PROJECT_VIEWER,
    action="dataset.file",
    response_class=StreamingResponse,
)
def get_file(
    project: str,
    name: str,
    version: str,
    path: str,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> StreamingResponse:
    ctx = app_context(request)
    namespace, _ = ctx.data.file_namespace(
        caller, project, _ref(name, version), validate_logical_path(path)
    )
    return download_from_namespace(ctx, namespace, path)


@api.route(
    "POST",
    "/datasets/{name}/versions/{version}/inputs",
    permission=RUN_EDITOR,
    action="dataset.input",
    status_code=201,
)
def record_input(
    project: str,
    name: str,
    version: str,
    body: InputRecord,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> DatasetVersionOut:
    """Record that a run read this version: editor of the run's project, viewer here."""
    used = app_context(request).data.record_input(caller, project, _ref(name, version), body.run_id)
    set_audit_target(request, f"dataset:{used.ref} run:{body.run_id}")
    return DatasetVersionOut.of(used)


@api.route("GET", "/dataset-diff", permission=PROJECT_VIEWER, action="dataset.diff")
def diff_versions(
    project: str,
    request: Request,
    old: str = Query(min_length=1, max_length=200),
    new: str = Query(min_length=1, max_length=200),
    caller: Principal = Depends(current_principal),
) -> DiffOut:
    """What changed from ``old`` to ``new`` (``name@vN`` references)."""
    before, after, diff = app_context(request).data.diff(caller, project, old, new)
    return DiffOut.of(before, after, diff)
