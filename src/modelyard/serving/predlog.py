"""The prediction log of one serving process: a sample of requests and predictions.

The request path only appends a tuple to a list (after a sampling draw and a byte-budget
check); a background thread turns what accumulated into a Parquet file every
``flush_interval_s`` and publishes it atomically (written as ``*.tmp``, then renamed) in
the spool directory. Whoever collects the log (the server's monitor loop, for
deployments) only ever sees whole files, and a replica that dies loses at most the last
flush interval.

Each row is one input row of a request:

* ``_ts`` (timestamp, ms, UTC): when the prediction was made;
* ``_request_id`` (string): the ``x-request-id`` the gateway (or caller) sent, else one
  this process made up; labels sent later are joined on it;
* ``_row`` (int32): the row's index within its request;
* ``_revision`` (int32), ``_latency_ms`` (float32), ``_status`` (int16);
* one column per input feature, named as in the model's signature;
* ``_prediction``: the model's output for the row (a list for multi-output models).

Budget: at most ``max_bytes_per_s`` bytes of input and output arrays are accepted per
wall-clock second; requests beyond it are dropped and counted (``dropped``), never
delayed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.serving._types import Array

logger = logging.getLogger("modelyard.serving")

#: Names of the columns the log adds around the features.
META_COLUMNS = ("_ts", "_request_id", "_row", "_revision", "_latency_ms", "_status")
PREDICTION_COLUMN = "_prediction"
_ROW_OVERHEAD_BYTES = 48
SPOOL_SUFFIX = ".parquet"
#: The default byte budget: 256 KiB/s, ~1,200 requests/s of 20 float64 features.
DEFAULT_MAX_BYTES_PER_S = 256 << 10
COUNTERS_SUFFIX = ".counters.json"

#: One logged request: time, request id, status, latency, input rows, prediction.
Entry = tuple[float, str, int, float, Array | None, Array | None]


def spool_root(home: Path) -> Path:
    """Where replicas of local deployments publish their prediction-log files."""
    return home / "predictions" / "spool"


def gateway_spool(home: Path) -> Path:
    """Where the gateway publishes its request log (a sub-folder per deployment name)."""
    return spool_root(home) / "gateway"


def revision_spool(home: Path, deployment_id: int, revision: int) -> Path:
    """The spool folder of one revision of a deployment."""
    return spool_root(home) / str(deployment_id) / str(revision)


@dataclass(frozen=True)
class PredictionLogOptions:
    """Where and how much a serving process logs.

    Attributes:
        directory: The spool directory finished Parquet files are published in.
        deployment: The deployment served (a metrics label; empty outside deployments).
        revision: The deployment revision written in every row (0 outside deployments).
        replica: A name for this process, used in the file names.
        sample_rate: The share of requests logged, in (0, 1].
        max_bytes_per_s: The byte budget of logged arrays per second.
        flush_interval_s: How often accumulated rows become a file.
    """

    directory: str
    deployment: str = ""
    revision: int = 0
    replica: str = "serve"
    sample_rate: float = 1.0
    max_bytes_per_s: int = DEFAULT_MAX_BYTES_PER_S
    flush_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in (0, 1], got {self.sample_rate}")
        if self.max_bytes_per_s < 1:
            raise ValueError(f"max_bytes_per_s must be >= 1, got {self.max_bytes_per_s}")
        if not self.flush_interval_s > 0:
            raise ValueError(f"flush_interval_s must be > 0, got {self.flush_interval_s}")


class PredictionLog:
    """Accepts predictions on the event loop, writes them from a thread.

    Args:
        options: Where and how much to log.
        columns: The feature names in input order, or None for models without a
            column signature (then only the metadata and the prediction are logged).
        clock: Wall-clock seconds.
        draw: Uniform draws in [0, 1) for sampling.
    """

    def __init__(
        self,
        options: PredictionLogOptions,
        columns: Sequence[str] | None,
        *,
        clock: Callable[[], float] = time.time,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.options = options
        self._columns = _feature_columns(columns)
        self._clock = clock
        self._draw = draw
        self._rate = options.sample_rate
        self._budget = options.max_bytes_per_s
        self._buffer: list[Entry] = []
        self._second = -1
        self._spent = 0
        self._ids = itertools.count(1)
        self._id_prefix = f"{options.replica}-{os.getpid():x}-{int(clock() * 1000):x}-"
        self._files = itertools.count(1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()  # one flush at a time (thread and final flush)
        #: Requests logged, dropped by the byte budget, left out by sampling; files written.
        self.logged = 0
        self.dropped = 0
        self.sampled_out = 0
        self.files_written = 0
        self.write_errors = 0
        self._published: dict[str, int] = {}

    def new_request_id(self) -> str:
        """An id for a request that came without one (unique per process)."""
        return self._id_prefix + str(next(self._ids))

    def admit(self, rows: Array | None, prediction: Array | None) -> float | None:
        """Whether to log a request: its timestamp if so, None if sampled out or over the
        byte budget (counted). Decided before anything else is looked at, so a request
        that is not logged costs a draw and a comparison."""
        if self._rate < 1.0 and self._draw() >= self._rate:
            self.sampled_out += 1
            return None
        size = _ROW_OVERHEAD_BYTES
        if rows is not None:
            size += rows.nbytes
        if prediction is not None:
            size += prediction.nbytes
        now = self._clock()
        second = int(now)
        if second != self._second:
            self._second = second
            self._spent = 0
        if self._spent + size > self._budget:
            self.dropped += 1
            return None
        self._spent += size
        return now

    def append(
        self,
        now: float,
        request_id: str,
        status: int,
        latency_s: float,
        rows: Array | None,
        prediction: Array | None,
    ) -> None:
        """Log a request :meth:`admit` let in (on the event loop; never blocks)."""
        self._buffer.append((now, request_id, status, latency_s, rows, prediction))
        self.logged += 1

    def record(
        self,
        request_id: str,
        status: int,
        latency_s: float,
        rows: Array | None,
        prediction: Array | None,
    ) -> None:
        """:meth:`admit`, then :meth:`append` (called on the event loop; never blocks)."""
        now = self.admit(rows, prediction)
        if now is not None:
            self.append(now, request_id, status, latency_s, rows, prediction)

    # ---- the writer thread ------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the flushing thread.

        Args:
            loop: The event loop :meth:`record` runs on. The thread then takes the
                accumulated entries on that loop (a callback), so an entry being appended
                while the thread takes the list can never be lost.
        """
        Path(self.options.directory).mkdir(parents=True, exist_ok=True)
        self._loop = loop
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and write what is left (call it on the loop :meth:`record` uses)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._loop = None
        self.flush()

    def _take(self) -> list[Entry]:
        """The accumulated entries, taken where :meth:`record` appends to them."""
        loop = self._loop
        if loop is None or loop.is_closed():
            batch, self._buffer = self._buffer, []
            return batch
        taken: list[list[Entry]] = []
        done = threading.Event()

        def swap() -> None:
            taken.append(self._buffer)
            self._buffer = []
            done.set()

        try:
            loop.call_soon_threadsafe(swap)
        except RuntimeError:  # the loop closed meanwhile
            batch, self._buffer = self._buffer, []
            return batch
        # A loop too busy to run the swap within a flush interval: try again next time.
        done.wait(self.options.flush_interval_s)
        return taken[0] if taken else []

    def _run(self) -> None:
        while not self._stop.wait(self.options.flush_interval_s):
            self.flush()

    def counters(self) -> dict[str, int]:
        """Cumulative counts since the process started."""
        return {
            "logged": self.logged,
            "dropped": self.dropped,
            "sampled_out": self.sampled_out,
            "files": self.files_written,
            "write_errors": self.write_errors,
        }

    def _write_counters(self) -> None:
        """Publish :meth:`counters` next to the files (``<replica>.counters.json``)."""
        import json

        counters = self.counters()
        if counters == self._published:
            return
        directory = Path(self.options.directory)
        final = directory / f"{self.options.replica}-{os.getpid()}{COUNTERS_SUFFIX}"
        partial = final.with_name(final.name + ".tmp")
        partial.write_text(json.dumps({"pid": os.getpid(), **counters}))
        os.replace(partial, final)
        self._published = counters

    def flush(self) -> Path | None:
        """Write the accumulated rows as one Parquet file; returns its path (None: empty).

        A failure to write is logged and counted, never raised: the log must not take
        the serving process down.
        """
        with self._lock:
            batch = self._take()
            written = None
            try:
                Path(self.options.directory).mkdir(parents=True, exist_ok=True)
            except OSError:
                logger.exception("cannot create the prediction log's folder")
            if batch:
                try:
                    written = self._write(batch)
                except Exception:
                    self.write_errors += 1
                    logger.exception("could not write %d prediction-log entries", len(batch))
            try:
                self._write_counters()
            except OSError:
                logger.exception("could not publish the prediction log's counters")
            return written

    def _write(self, batch: list[Entry]) -> Path:
        import pyarrow.parquet as pq

        table = build_table(batch, self._columns, self.options.revision)
        directory = Path(self.options.directory)
        first_ms = int(batch[0][0] * 1000)
        name = f"{first_ms:013d}-{self.options.replica}-{os.getpid()}-{next(self._files)}"
        final = directory / (name + SPOOL_SUFFIX)
        partial = directory / (name + SPOOL_SUFFIX + ".tmp")
        # Plain encoding: a spool file lives seconds (the collector re-encodes segments
        # with dictionaries and zstd); writing it plain costs this process half as much.
        pq.write_table(
            table, partial, compression="none", use_dictionary=False, write_statistics=False
        )
        os.replace(partial, final)
        self.files_written += 1
        return final


def _feature_columns(columns: Sequence[str] | None) -> tuple[str, ...] | None:
    if columns is None:
        return None
    reserved = set(META_COLUMNS) | {PREDICTION_COLUMN}
    clash = [c for c in columns if c in reserved]
    if clash:
        logger.warning("features %s clash with the prediction log's own columns", clash)
        return None
    return tuple(columns)


def build_table(
    batch: Sequence[Entry],
    columns: tuple[str, ...] | None,
    revision: int,
) -> Any:
    """The Parquet table of a batch of logged requests (one row per input row)."""
    import pyarrow as pa

    times, ids, statuses, latencies, rows_list, outputs = zip(*batch, strict=True)
    counts = np.array(
        [r.shape[0] if r is not None and r.ndim > 0 else 1 for r in rows_list], dtype=np.int64
    )
    total = int(counts.sum())
    single = total == len(batch)  # the usual case: one row per request

    def per_row(values: Any) -> Any:
        return values if single else np.repeat(values, counts)

    ts_ms = per_row((np.array(times, dtype=np.float64) * 1000).astype(np.int64))
    request_ids = pa.array(ids, pa.string())
    if not single:
        request_ids = request_ids.take(pa.array(np.repeat(np.arange(len(batch)), counts)))
    rows_in_request = (
        np.zeros(total, np.int32)
        if single
        else (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)).astype(np.int32)
    )
    arrays: dict[str, Any] = {
        "_ts": pa.array(ts_ms.astype("datetime64[ms]"), pa.timestamp("ms", tz="UTC")),
        "_request_id": request_ids,
        "_row": pa.array(rows_in_request),
        "_revision": pa.array(np.full(total, revision, np.int32)),
        "_latency_ms": pa.array(per_row(np.array(latencies, dtype=np.float32) * 1000)),
        "_status": pa.array(per_row(np.array(statuses, dtype=np.int16))),
    }
    if columns is not None and all(r is not None and r.ndim == 2 for r in rows_list):
        matrix = np.concatenate(rows_list)
        if matrix.shape[1] == len(columns):
            for j, name in enumerate(columns):
                arrays[name] = pa.array(np.ascontiguousarray(matrix[:, j]))
    arrays[PREDICTION_COLUMN] = _predictions(outputs, counts, total)
    return pa.table(arrays)


def _predictions(outputs: Sequence[Array | None], counts: Any, total: int) -> Any:
    import pyarrow as pa

    if any(o is None for o in outputs):
        return pa.nulls(total)
    arrays = [np.asarray(o) for o in outputs]
    try:
        if all(a.ndim == 1 for a in arrays) and [len(a) for a in arrays] == counts.tolist():
            joined = np.concatenate(arrays)
            if joined.dtype.kind in "biuf":
                return pa.array(joined)
            return pa.array(joined.astype(str).tolist(), pa.string())
        if all(a.ndim == 2 for a in arrays) and [len(a) for a in arrays] == counts.tolist():
            joined = np.concatenate(arrays).astype(np.float64)
            width = joined.shape[1]
            return pa.FixedSizeListArray.from_arrays(pa.array(joined.reshape(-1)), width)
    except (ValueError, TypeError):
        pass
    # Anything else (shapes that do not line up with the rows): one JSON value per row.
    import json

    texts: list[str] = []
    for a, n in zip(arrays, counts.tolist(), strict=True):
        text = json.dumps(a.tolist(), default=str)
        texts.extend([text] * n)
    return pa.array(texts, pa.string())
