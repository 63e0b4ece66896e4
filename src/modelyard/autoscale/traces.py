"""Reading request traces: CSV timestamps or per-interval counts; service-time models."""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from modelyard.core.errors import InvalidInput

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Trace:
    """Request arrivals in seconds from the first one, sorted; optional service times.

    Attributes:
        arrival_s: arrival times, ascending, the first at 0.
        service_s: per-request service times from the trace (same order), or ``None``.
        source: where it came from, for reports.
        notes: what the loader changed and a user should know (rows it sorted).
    """

    arrival_s: FloatArray
    service_s: FloatArray | None
    source: str
    notes: tuple[str, ...] = ()

    @property
    def requests(self) -> int:
        return int(self.arrival_s.size)

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1]) if self.arrival_s.size else 0.0

    def scaled(self, time_scale: float) -> Trace:
        """Compress time ``time_scale``-fold: ``time_scale`` times the arrival rate.

        Service times are not scaled: the same requests arrive faster.
        """
        if not (time_scale > 0 and math.isfinite(time_scale)):
            raise InvalidInput(f"--time-scale must be a positive number, got {time_scale}")
        return Trace(self.arrival_s / time_scale, self.service_s, self.source, self.notes)


def _parse_time(text: str, where: str, column: str) -> tuple[float, bool]:
    """Seconds since the epoch (or a relative number of seconds), and whether the cell
    was a plain number (rather than an ISO 8601 date)."""
    value = text.strip()
    if not value:
        raise InvalidInput(
            f"{where}: empty timestamp in column {column!r} "
            "(a gap in the trace: fill it in or delete the row)"
        )
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise InvalidInput(f"{where}: timestamp {value!r} is not a finite number")
        return number, True
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{where}: cannot parse timestamp {value!r} (want ISO 8601 or epoch seconds)"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp(), False


def _open_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"trace file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read trace file {path}: {exc}") from None
    if not text.strip():
        raise InvalidInput(f"{path}: line 1: the trace file is empty")
    return text.splitlines()


def load_timestamps(
    path: Path, *, time_column: str, service_time_column: str | None = None
) -> Trace:
    """One CSV row per request.

    Rows out of time order are sorted (logs merged from several servers often are);
    the trace's ``notes`` say how many and where the first was. Blank lines at the end
    are ignored.

    Args:
        path: the CSV file, with a header row.
        time_column: column holding the arrival time (ISO 8601, naive = UTC, or epoch s).
        service_time_column: optional column with the service time in seconds.

    Raises:
        InvalidInput: empty file, missing column, a row with the wrong number of cells,
            an empty, unparseable or non-finite timestamp, epoch numbers mixed with
            dates, a blank line between requests (a gap), an empty, negative or
            non-numeric service time; the message names the file and line.
    """
    reader = csv.reader(_open_lines(path))
    header = [h.strip() for h in next(reader)]
    columns = {name: i for i, name in enumerate(header)}
    for wanted in (time_column, service_time_column):
        if wanted is not None and wanted not in columns:
            raise InvalidInput(
                f"{path}: line 1: no column {wanted!r} (columns: {', '.join(header)})"
            )
    t_index = columns[time_column]
    s_index = columns[service_time_column] if service_time_column is not None else None
    times: list[float] = []
    services: list[float] = []
    lines: list[int] = []
    blank_at: int | None = None
    first_kind: tuple[bool, int] | None = None  # (a plain number?, its line)
    for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
            if times and blank_at is None:
                blank_at = reader.line_num
            continue
        if blank_at is not None:
            raise InvalidInput(
                f"{path}: line {blank_at}: blank line between requests (a gap in the "
                "trace): delete it or fill in the missing rows"
            )
        where = f"{path}: line {reader.line_num}"
        _check_width(row, len(header), where)
        stamp, is_number = _parse_time(row[t_index], where, time_column)
        if first_kind is None:
            first_kind = (is_number, reader.line_num)
        elif is_number != first_kind[0]:
            kinds = ("a number", "an ISO 8601 date")
            raise InvalidInput(
                f"{where}: timestamp {row[t_index].strip()!r} is {kinds[not is_number]} but "
                f"line {first_kind[1]} has {kinds[is_number]}; use one kind throughout"
            )
        times.append(stamp)
        lines.append(reader.line_num)
        if s_index is not None:
            services.append(_parse_service(row[s_index], where, service_time_column or ""))
    if not times:
        raise InvalidInput(f"{path}: line 2: the trace has a header but no requests")
    arrival = np.asarray(times, dtype=np.float64)
    notes: tuple[str, ...] = ()
    backwards = np.flatnonzero(np.diff(arrival) < 0)
    if backwards.size:
        rows = f"{backwards.size:,} rows go" if backwards.size > 1 else "1 row goes"
        notes = (
            f"{path}: {rows} back in time (the first at line {lines[int(backwards[0]) + 1]}); "
            "requests are replayed in arrival order",
        )
    order = np.argsort(arrival, kind="stable")
    arrival = arrival[order] - arrival[order[0]]
    service = np.asarray(services, dtype=np.float64)[order] if s_index is not None else None
    return Trace(arrival, service, str(path), notes)


def _check_width(row: list[str], width: int, where: str) -> None:
    """A row has the header's number of cells (extra empty cells, as spreadsheets write
    them, are allowed)."""
    if len(row) == width or (len(row) > width and not any(c.strip() for c in row[width:])):
        return
    raise InvalidInput(f"{where}: expected {width} columns, got {len(row)}")


def _parse_service(text: str, where: str, column: str) -> float:
    if not text.strip():
        raise InvalidInput(
            f"{where}: empty service time in column {column!r} "
            "(a gap in the trace: fill it in or delete the row)"
        )
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"{where}: service time {text!r} is not a number") from None
    if not (value >= 0 and math.isfinite(value)):
        raise InvalidInput(f"{where}: service time must be a finite number >= 0, got {text!r}")
    return value


def load_counts(path: Path, *, interval_s: float, seed: int = 0) -> Trace:
    """Requests per interval, whitespace or newline separated.

    The requests of an interval arrive at uniformly random times within it (seeded, so a
    replay is deterministic).

    Raises:
        InvalidInput: empty file, a count that is negative or not an integer, a blank line
            between counts (a missing interval); the message names the line.
    """
    if not (interval_s > 0 and math.isfinite(interval_s)):
        raise InvalidInput(f"--interval-s must be a positive number, got {interval_s}")
    counts: list[int] = []
    blank_at: int | None = None
    for number, line in enumerate(_open_lines(path), start=1):
        tokens = line.split()
        if not tokens:
            if counts and blank_at is None:
                blank_at = number
            continue
        if blank_at is not None:
            raise InvalidInput(
                f"{path}: line {blank_at}: blank line between counts (a missing interval): "
                "write 0 for an interval without requests"
            )
        for token in tokens:
            if not re.fullmatch(r"[+-]?\d+", token):
                raise InvalidInput(f"{path}: line {number}: count {token!r} is not an integer")
            count = int(token)
            if count < 0:
                raise InvalidInput(f"{path}: line {number}: count {count} is negative")
            counts.append(count)
    per_interval = np.asarray(counts, dtype=np.int64)
    if per_interval.sum() == 0:
        raise InvalidInput(f"{path}: line 1: the trace has no requests")
    rng = np.random.default_rng(seed)
    starts = np.repeat(np.arange(per_interval.size, dtype=np.float64) * interval_s, per_interval)
    arrival = np.sort(starts + rng.uniform(0.0, interval_s, size=starts.size))
    return Trace(arrival - arrival[0], None, str(path))


def load_trace(
    path: Path,
    *,
    fmt: str,
    time_column: str | None = None,
    service_time_column: str | None = None,
    interval_s: float = 1.0,
    seed: int = 0,
) -> Trace:
    """A trace as the CLI's trace options describe it (``--format``, ``--time-column``, …).

    Raises:
        InvalidInput: an option the format does not take or lacks, or a bad file.
    """
    if fmt == "timestamps":
        if not time_column:
            raise InvalidInput("--format timestamps needs --time-column")
        return load_timestamps(
            path, time_column=time_column, service_time_column=service_time_column
        )
    if fmt != "counts":
        raise InvalidInput(f"--format: want timestamps or counts, got {fmt!r}")
    if service_time_column:
        raise InvalidInput("--service-time-column needs --format timestamps")
    return load_counts(path, interval_s=interval_s, seed=seed)


@dataclass(frozen=True)
class ServiceTime:
    """A service-time model: a constant, or a lognormal with a given mean."""

    mean_ms: float
    sigma: float = 0.0

    def sample(self, n: int, seed: int) -> FloatArray:
        mean_s = self.mean_ms / 1000.0
        if self.sigma == 0:
            return np.full(n, mean_s, dtype=np.float64)
        rng = np.random.default_rng(seed)
        mu = math.log(mean_s) - self.sigma**2 / 2.0
        return rng.lognormal(mu, self.sigma, size=n)

    def describe(self) -> str:
        return (
            f"{self.mean_ms:g} ms"
            if self.sigma == 0
            else f"lognormal:{self.mean_ms:g},{self.sigma:g}"
        )


def parse_service_time(spec: str) -> ServiceTime:
    """``"40"`` (ms) or ``"lognormal:MEAN_MS,SIGMA"``.

    Raises:
        InvalidInput: anything else, or a non-positive mean, or a negative sigma.
    """
    text = spec.strip()
    match = re.fullmatch(r"lognormal:([^,]+),(.+)", text)
    try:
        mean_ms, sigma = (float(match[1]), float(match[2])) if match else (float(text), 0.0)
    except ValueError:
        mean_ms, sigma = math.nan, math.nan
    if not (mean_ms > 0 and math.isfinite(mean_ms) and sigma >= 0 and math.isfinite(sigma)):
        raise InvalidInput(
            f"--service-time-ms: want a positive number of ms or 'lognormal:MEAN_MS,SIGMA', "
            f"got {spec!r}"
        )
    return ServiceTime(mean_ms, sigma)
