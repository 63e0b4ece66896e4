"""The gateway's request log: every answered request as the caller saw it.

Replicas log what they predicted (:mod:`modelyard.serving.predlog`); the gateway logs
what callers got, including the answers no replica gave (503 while no replica came up,
504 timeouts, 502 after failed retries, callers that left): time, request id, revision,
replica, status, latency (queueing included) and send attempts. Each entry is one tuple
appended on the event loop; every ``flush_interval_s`` the list is handed to a thread that
writes one Parquet file per deployment into ``<directory>/<deployment>/`` (``*.tmp``, then
renamed), where the server's monitor loop collects them next to the replicas' logs.

At most ``max_entries_per_s`` entries are kept per second; past that they are counted as
dropped, never delayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("modelyard.gateway")

#: time, request id, deployment, revision, replica, status, latency s, attempts
Entry = tuple[float, str, str, int, str, int, float, int]
SUFFIX = ".parquet"


class RequestLog:
    """Collects answered requests on the loop; writes them from a worker thread.

    Args:
        directory: The gateway spool folder (one sub-folder per deployment).
        max_entries_per_s: Entries kept per wall-clock second.
        flush_interval_s: How often entries become files.
    """

    def __init__(
        self, directory: Path, *, max_entries_per_s: int = 5000, flush_interval_s: float = 1.0
    ) -> None:
        if max_entries_per_s < 1 or not flush_interval_s > 0:
            raise ValueError("max_entries_per_s must be >= 1 and flush_interval_s > 0")
        self.directory = directory
        self.max_entries_per_s = max_entries_per_s
        self.flush_interval_s = flush_interval_s
        self._entries: list[Entry] = []
        self._second = -1
        self._count = 0
        self._files = 0
        self._timer: asyncio.TimerHandle | None = None
        self._writing: asyncio.Future[None] | None = None
        self.logged = 0
        self.dropped = 0
        self.write_errors = 0

    def record(
        self,
        request_id: str,
        deployment: str,
        revision: int,
        replica: str,
        status: int,
        latency_s: float,
        attempts: int,
    ) -> None:
        """One answered request (called on the event loop; never blocks)."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._count = 0
        if self._count >= self.max_entries_per_s:
            self.dropped += 1
            return
        self._count += 1
        self.logged += 1
        self._entries.append(
            (now, request_id, deployment, revision, replica, status, latency_s, attempts)
        )

    # ---- flushing ---------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Flush every ``flush_interval_s`` on ``loop`` (the loop :meth:`record` runs on)."""
        self._loop = loop
        self._timer = loop.call_later(self.flush_interval_s, self._tick)

    def _tick(self) -> None:
        self._timer = self._loop.call_later(self.flush_interval_s, self._tick)
        if self._writing is not None and not self._writing.done():
            return  # the previous file is still being written: take more next time
        self._writing = self._flush_async()

    def _flush_async(self) -> asyncio.Future[None] | None:
        entries, self._entries = self._entries, []
        if not entries:
            return None
        return self._loop.run_in_executor(None, self._write, entries)

    async def close(self) -> None:
        """Stop the timer and write what is left."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writing is not None:
            with contextlib.suppress(Exception):
                await self._writing
        final = self._flush_async()
        if final is not None:
            await final

    def _write(self, entries: Sequence[Entry]) -> None:
        try:
            for deployment, table in build_tables(entries).items():
                folder = self.directory / deployment
                folder.mkdir(parents=True, exist_ok=True)
                self._files += 1
                first_ms = int(table.column("_ts")[0].value)
                name = f"{first_ms:013d}-gateway-{os.getpid()}-{self._files}{SUFFIX}"
                partial = folder / (name + ".tmp")
                import pyarrow.parquet as pq

                pq.write_table(
                    table,
                    partial,
                    compression="none",
                    use_dictionary=False,
                    write_statistics=False,
                )
                os.replace(partial, folder / name)
        except Exception:
            self.write_errors += 1
            logger.exception("could not write %d request-log entries", len(entries))


def build_tables(entries: Sequence[Entry]) -> dict[str, Any]:
    """One table per deployment: ``_ts``, ``_request_id``, ``_revision``, ``_replica``,
    ``_status``, ``_latency_ms``, ``_attempts``."""
    import pyarrow as pa

    by_deployment: dict[str, list[Entry]] = {}
    for entry in entries:
        by_deployment.setdefault(entry[2], []).append(entry)
    out = {}
    for deployment, rows in by_deployment.items():
        ts, ids, _, revisions, replicas, statuses, latencies, attempts = zip(*rows, strict=True)
        out[deployment] = pa.table(
            {
                "_ts": pa.array([int(t * 1000) for t in ts], pa.int64()).cast(
                    pa.timestamp("ms", tz="UTC")
                ),
                "_request_id": pa.array(ids, pa.string()),
                "_revision": pa.array(revisions, pa.int32()),
                "_replica": pa.array(replicas, pa.string()),
                "_status": pa.array(statuses, pa.int16()),
                "_latency_ms": pa.array([lat * 1000 for lat in latencies], pa.float32()),
                "_attempts": pa.array(attempts, pa.int16()),
            }
        )
    return out
