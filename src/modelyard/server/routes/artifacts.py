"""/api/v1/projects/{project}/artifacts: a project's artifact namespace over the blob store.

Uploads stream straight into the blob store (constant memory); the index row is
committed only after the blob is complete and verified, so an interrupted upload is
never visible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import anyio
import anyio.from_thread
from anyio.streams.memory import MemoryObjectReceiveStream
from fastapi import Query, Request
from fastapi.responses import StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard.artifacts import BlobInfo, BlobStore, validate_digest, validate_logical_path
from modelyard.auth import PROJECT_EDITOR, PROJECT_VIEWER
from modelyard.core.errors import IntegrityError, InvalidInput, ModelyardError
from modelyard.server._context import AppContext, app_context
from modelyard.server._routing import ApiRouter, set_audit_target
from modelyard.server._schemas import ArtifactOut

api = ApiRouter("/api/v1", tags=["artifacts"])

DIGEST_HEADER = "x-modelyard-digest"
_END: list[bytes] = []  # an empty block marks a complete body; the pump never sends one otherwise
# The event loop hands a body to the worker thread in blocks of about this size.
BLOCK_BYTES = 4 * 1024 * 1024
BLOCKS_BUFFERED = 2
T = TypeVar("T")


def namespace_of_project(project: str) -> str:
    return f"project:{project}"


def _chunks_from(receive: MemoryObjectReceiveStream[list[bytes]]) -> Iterator[bytes]:
    """Runs in a worker thread: pulls the blocks the event loop received, chunk by chunk."""
    while True:
        try:
            block = anyio.from_thread.run(receive.receive)
        except anyio.EndOfStream:
            raise InvalidInput("upload interrupted before the body was complete") from None
        if not block:  # _END
            return
        yield from block


async def stream_request_into(
    request: Request, blobs: BlobStore, expected_digest: str | None
) -> BlobInfo:
    """Stream the request body into the blob store while it arrives."""
    return await consume_request_body(
        request, lambda chunks: blobs.put_stream(chunks, expected_digest=expected_digest)
    )


async def consume_request_body(
    request: Request, consume: Callable[[Iterator[bytes]], T], *, max_bytes: int | None = None
) -> T:
    """Run ``consume`` in a worker thread on the request body's chunks as they arrive.

    The event loop hands the body over in blocks of about :data:`BLOCK_BYTES` (a list of
    the chunks received), not chunk by chunk: each hand-over to the thread is a round
    trip through the event loop, and with uvicorn's ~256 KiB chunks those cost about as
    much as hashing the bytes (~0.5 s per GiB, measured). At most
    :data:`BLOCKS_BUFFERED` blocks wait, so memory stays bounded. A body shorter than its
    ``content-length`` makes the iterator raise ``InvalidInput``; one longer than
    ``max_bytes`` is refused with 413.
    """
    declared = request.headers.get("content-length")
    send, receive = anyio.create_memory_object_stream[list[bytes]](max_buffer_size=BLOCKS_BUFFERED)

    async def pump() -> None:
        received = 0
        block: list[bytes] = []
        block_bytes = 0
        async with send:
            async for chunk in request.stream():
                if not chunk:
                    continue
                received += len(chunk)
                if max_bytes is not None and received > max_bytes:
                    raise StarletteHTTPException(413, f"the body is at most {max_bytes} bytes")
                block.append(chunk)
                block_bytes += len(chunk)
                if block_bytes >= BLOCK_BYTES:
                    await send.send(block)
                    block, block_bytes = [], 0
            if block:
                await send.send(block)
            if declared is not None and declared.isdigit() and int(declared) != received:
                return  # closing without _END makes the consumer abort
            await send.send(_END)

    result: list[T] = []

    async def run_consumer() -> None:
        with receive:
            result.append(await anyio.to_thread.run_sync(lambda: consume(_chunks_from(receive))))

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump)
            tg.start_soon(run_consumer)
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
    for kind in (StarletteHTTPException, ModelyardError):  # a 413 first, then ours
        for exc in flat:
            if isinstance(exc, kind):
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
