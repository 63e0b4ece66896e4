"""/api/v1/projects/{project}/artifacts: a project's artifact namespace over the blob store.

Uploads stream straight into the blob store (constant memory); the index row is
committed only after the blob is complete and verified, so an interrupted upload is
never visible.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import anyio.from_thread
from anyio.streams.memory import MemoryObjectReceiveStream
from fastapi import Query, Request
from fastapi.responses import StreamingResponse

from modelyard.artifacts import BlobInfo, BlobStore, validate_digest, validate_logical_path
from modelyard.auth import PROJECT_EDITOR, PROJECT_VIEWER
from modelyard.core.errors import IntegrityError, InvalidInput, ModelyardError
from modelyard.server._context import AppContext, app_context
from modelyard.server._routing import ApiRouter, set_audit_target
from modelyard.server._schemas import ArtifactOut

api = ApiRouter("/api/v1", tags=["artifacts"])

DIGEST_HEADER = "x-modelyard-digest"
_END = b""  # a zero-length chunk marks a complete body; the stream never sends one otherwise


def namespace_of_project(project: str) -> str:
    return f"project:{project}"


def _chunks_from(receive: MemoryObjectReceiveStream[bytes]) -> Iterator[bytes]:
    """Runs in a worker thread: pulls chunks the event loop received."""
    while True:
        try:
            chunk = anyio.from_thread.run(receive.receive)
        except anyio.EndOfStream:
            raise InvalidInput("upload interrupted before the body was complete") from None
        if chunk == _END:
            return
        yield chunk


async def stream_request_into(
    request: Request, blobs: BlobStore, expected_digest: str | None
) -> BlobInfo:
    """Stream the request body into the blob store while it arrives."""
    declared = request.headers.get("content-length")
    send, receive = anyio.create_memory_object_stream[bytes](max_buffer_size=16)
    received = 0

    async def pump() -> None:
        nonlocal received
        async with send:
            async for chunk in request.stream():
                if chunk:
                    received += len(chunk)
                    await send.send(chunk)
            if declared is not None and declared.isdigit() and int(declared) != received:
                return  # closing without _END makes the writer abort
            await send.send(_END)

    result: list[BlobInfo] = []

    async def write() -> None:
        with receive:
            info = await anyio.to_thread.run_sync(
                lambda: blobs.put_stream(_chunks_from(receive), expected_digest=expected_digest)
            )
        result.append(info)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump)
            tg.start_soon(write)
    except BaseExceptionGroup as group:
        raise _first_meaningful(group) from None
    return result[0]


def _first_meaningful(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report from a failed upload: ours first, then a disconnect."""
    flat: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            flat.append(exc)
    for exc in flat:
        if isinstance(exc, ModelyardError):
            return exc
    return flat[0] if flat else group


# --- operations on any artifact namespace (projects here; runs and models elsewhere) ------


async def upload_to_namespace(request: Request, namespace: str, path: str) -> ArtifactOut:
    """Stream the body into the blob store, then point ``path`` in ``namespace`` at it."""
    ctx = app_context(request)
    logical = validate_logical_path(path)
    set_audit_target(request, f"artifact:{logical}")
    header = request.headers.get(DIGEST_HEADER)
    expected = validate_digest(header) if header else None
    try:
        info = await stream_request_into(request, ctx.blobs, expected)
    except IntegrityError as exc:
        raise InvalidInput(f"body does not match the {DIGEST_HEADER} header: {exc}") from exc
    entry = await anyio.to_thread.run_sync(
        ctx.store.artifacts.put, namespace, logical, info.digest, info.size
    )
    return ArtifactOut.of(entry)


def download_from_namespace(ctx: AppContext, namespace: str, path: str) -> StreamingResponse:
    """Stream a stored artifact; the blob store verifies its digest as it goes."""
    entry = ctx.store.artifacts.get(namespace, validate_logical_path(path))
    return StreamingResponse(
        ctx.blobs.open_stream(entry.digest),
        media_type="application/octet-stream",
        headers={
            "content-length": str(entry.size),
            DIGEST_HEADER: entry.digest,
            "etag": f'"{entry.digest}"',
        },
    )


# --- a project's own namespace ---------------------------------------------------------


@api.route(
    "PUT",
    "/projects/{project}/artifacts/{path:path}",
    permission=PROJECT_EDITOR,
    action="artifact.put",
    status_code=201,
)
async def put_artifact(project: str, path: str, request: Request) -> ArtifactOut:
    return await upload_to_namespace(request, namespace_of_project(project), path)


@api.route(
    "GET", "/projects/{project}/artifacts", permission=PROJECT_VIEWER, action="artifact.list"
)
def list_artifacts(
    project: str, request: Request, prefix: str = Query("", max_length=1024)
) -> list[ArtifactOut]:
    ctx = app_context(request)
    ctx.store.auth.get_project(project)
    entries = ctx.store.artifacts.list(namespace_of_project(project), prefix)
    return [ArtifactOut.of(e) for e in entries]


@api.route(
    "GET",
    "/projects/{project}/artifacts/{path:path}",
    permission=PROJECT_VIEWER,
    action="artifact.get",
    response_class=StreamingResponse,
)
def get_artifact(project: str, path: str, request: Request) -> StreamingResponse:
    return download_from_namespace(app_context(request), namespace_of_project(project), path)


@api.route(
    "DELETE",
    "/projects/{project}/artifacts/{path:path}",
    permission=PROJECT_EDITOR,
    action="artifact.delete",
)
def delete_artifact(project: str, path: str, request: Request) -> dict[str, str]:
    logical = validate_logical_path(path)
    set_audit_target(request, f"artifact:{logical}")
    app_context(request).store.artifacts.delete(namespace_of_project(project), logical)
    return {"deleted": logical}


__all__ = [
    "api",
    "download_from_namespace",
    "namespace_of_project",
    "stream_request_into",
    "upload_to_namespace",
    "validate_digest",
]
