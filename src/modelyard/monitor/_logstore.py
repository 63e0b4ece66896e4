"""The prediction log on the server's side: collect replica spool files into segments
in the artifact store, read a time window back, and keep the log within its retention.

Replicas publish small Parquet files (one per flush) under
``$MODELYARD_HOME/predictions/spool/<deployment id>/<revision>/``. Collecting them:

1. moves every finished file of a revision into a batch folder of its own
   (``…/.batches/<batch id>/``; a rename, so two collectors never take the same file);
2. concatenates them into one Parquet segment, stores it as a content-addressed blob;
3. records the segment and its artifact-index entry in one transaction (the batch id is
   unique, so a batch is recorded once);
4. removes the batch folder.

A collector that dies between 1 and 4 leaves the batch folder; the next collection
finishes it (recording it only if step 3 had not happened), so no row is lost or
counted twice.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.artifacts import BlobStore
from modelyard.core.errors import AlreadyExists
from modelyard.core.monitoring import MonitorConfig, PredictionSegment
from modelyard.serving.predlog import SPOOL_SUFFIX, spool_root
from modelyard.store import MonitorRepository

logger = logging.getLogger("modelyard.monitor")

BATCHES = ".batches"
#: Spool files are collected once the oldest is this old, or they add up to ROTATE_BYTES.
ROTATE_S = 60.0
ROTATE_BYTES = 8 << 20
#: Gateway log files of a deployment that no longer exists are removed after this long.
STALE_S = 3600.0


@dataclass(frozen=True)
class CollectResult:
    segments: int
    rows: int
    files: int


class LogStore:
    """Collects, reads and prunes deployments' prediction logs.

    Args:
        home: ``MODELYARD_HOME`` (the spool lives under it).
        repo: Segment records.
        blobs: Where segments are stored.
        clock: Wall-clock seconds.
    """

    def __init__(
        self,
        home: Path,
        repo: MonitorRepository,
        blobs: BlobStore,
        clock: Any = time.time,
        deployment_ids: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self._root = spool_root(home)
        self._repo = repo
        self._blobs = blobs
        self._clock = clock
        self._deployment_ids = deployment_ids

    # ---- collecting ---------------------------------------------------------------

    def collect(self, deployment_id: int | None = None, *, force: bool = False) -> CollectResult:
        """Turn spool files into segments.

        Args:
            deployment_id: Only this deployment (None: all).
            force: Collect whatever is there, however young or small.
        """
        totals = [0, 0, 0]
        if not self._root.is_dir():
            return CollectResult(0, 0, 0)
        for dep_dir in sorted(self._root.iterdir()):
            if not dep_dir.name.isdigit():
                continue
            dep_id = int(dep_dir.name)
            if deployment_id is not None and dep_id != deployment_id:
                continue
            for batch_dir in sorted((dep_dir / BATCHES).glob("*")):
                self._finish(dep_id, batch_dir, totals)
            for rev_dir in sorted(dep_dir.iterdir()):
                if rev_dir.name.isdigit():
                    self._take(dep_id, rev_dir, rev_dir.name, force, totals)
        gateway = self._root / "gateway"
        if gateway.is_dir() and self._deployment_ids is not None:
            ids = self._deployment_ids()
            for name_dir in sorted(gateway.iterdir()):
                owner = ids.get(name_dir.name)
                if owner is None:
                    self._forget_stale(name_dir)  # no live deployment of that name
                elif deployment_id is None or owner == deployment_id:
                    self._take(owner, name_dir, "gateway", force, totals)
        return CollectResult(*totals)

    def _forget_stale(self, folder: Path) -> None:
        """Remove request-log files of a deleted deployment once they are an hour old."""
        for f in folder.glob("*" + SPOOL_SUFFIX):
            with contextlib.suppress(OSError):
                if self._clock() - f.stat().st_mtime > STALE_S:
                    f.unlink()

    def _take(self, dep_id: int, folder: Path, kind: str, force: bool, totals: list[int]) -> None:
        """Move a folder's finished files into a batch of their own, then finish it."""
        files = sorted(folder.glob("*" + SPOOL_SUFFIX))
        if not files or not (force or self._due(files)):
            return
        batch_dir = self._root / str(dep_id) / BATCHES / f"{kind}-{secrets.token_hex(8)}"
        batch_dir.mkdir(parents=True)
        for f in files:
            try:
                os.rename(f, batch_dir / f.name)
            except FileNotFoundError:
                continue  # another collector took it
        self._finish(dep_id, batch_dir, totals)

    def _due(self, files: Sequence[Path]) -> bool:
        try:
            oldest = min(f.stat().st_mtime for f in files)
            size = sum(f.stat().st_size for f in files)
        except FileNotFoundError:
            return False
        return self._clock() - oldest >= ROTATE_S or size >= ROTATE_BYTES

    def _finish(self, dep_id: int, batch_dir: Path, totals: list[int]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        batch = batch_dir.name
        files = sorted(batch_dir.glob("*" + SPOOL_SUFFIX))
        if not files or self._repo.has_batch(batch):
            shutil.rmtree(batch_dir, ignore_errors=True)
            return
        tables = []
        for f in files:
            try:
                tables.append(pq.read_table(f))
            except Exception as exc:  # a torn or foreign file: keep it aside, say so
                logger.warning("prediction log: unreadable spool file %s: %s", f, exc)
                f.rename(f.with_suffix(".bad"))
        if not tables:
            shutil.rmtree(batch_dir, ignore_errors=True)
            return
        table = pa.concat_tables(tables, promote_options="permissive")
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        data = sink.getvalue()
        info = self._blobs.put_bytes(data)
        ts = table.column("_ts")
        first_ms = int(pa.compute.min(ts).cast(pa.int64()).as_py())
        last_ms = int(pa.compute.max(ts).cast(pa.int64()).as_py())
        kind = batch.split("-", 1)[0]
        source, revision = ("gateway", 0) if kind == "gateway" else ("replica", int(kind))
        with contextlib.suppress(AlreadyExists):  # a collector before us recorded it
            self._repo.add_segment(
                dep_id,
                source,
                revision,
                batch,
                first_ms,
                last_ms,
                table.num_rows,
                len(data),
                info.digest,
            )
        shutil.rmtree(batch_dir, ignore_errors=True)
        totals[0] += 1
        totals[1] += table.num_rows
        totals[2] += len(files)

    # ---- reading --------------------------------------------------------------------

    def window(
        self,
        deployment_id: int,
        since_ms: int,
        until_ms: int,
        columns: Sequence[str] | None = None,
        source: str = "replica",
    ) -> Any:
        """The logged rows of ``[since_ms, until_ms]`` as one pyarrow table (None: none).

        ``source``: ``replica`` (predictions) or ``gateway`` (the request log). Every
        segment is verified against its digest as it is read.
        """
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        tables = []
        segments = self._repo.segments(
            deployment_id, since_ms=since_ms, until_ms=until_ms, source=source
        )
        for seg in segments:
            table = pq.read_table(io.BytesIO(self._blobs.read_bytes(seg.digest)))
            if columns is not None:
                wanted = [
                    c for c in ("_ts", "_request_id", "_row", *columns) if c in table.schema.names
                ]
                table = table.select(list(dict.fromkeys(wanted)))
            ts = table.column("_ts").cast(pa.int64())
            mask = pc.and_(pc.greater_equal(ts, since_ms), pc.less_equal(ts, until_ms))
            tables.append(table.filter(mask))
        if not tables:
            return None
        return pa.concat_tables(tables, promote_options="permissive")

    # ---- retention ------------------------------------------------------------------

    def enforce_retention(self, deployment_id: int, config: MonitorConfig) -> int:
        """Forget the oldest segments past the size or age limit; returns how many."""
        segments = self._repo.segments(deployment_id)
        cutoff_ms = int((self._clock() - config.log_retention_days * 86400) * 1000)
        doomed = [s.id for s in segments if s.last_ms < cutoff_ms]
        keep: list[PredictionSegment] = [s for s in segments if s.last_ms >= cutoff_ms]
        budget = config.log_retention_mb * (1 << 20)
        total = sum(s.size for s in keep)
        for seg in keep:  # oldest first
            if total <= budget:
                break
            doomed.append(seg.id)
            total -= seg.size
        orphans = self._repo.remove_segments(deployment_id, doomed)
        for digest in orphans:
            try:
                self._blobs.delete(digest)
            except Exception as exc:  # the index no longer points at it; retry is harmless
                logger.warning("prediction log: could not delete blob %s: %s", digest, exc)
        return len(doomed)
