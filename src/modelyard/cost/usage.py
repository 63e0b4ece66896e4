"""What local replicas really use, read from ``/proc``, and what the monitor loop counts.

Each monitor pass reads every active local replica's CPU time (``utime + stime`` of
``/proc/<pid>/stat``) and resident memory (``VmRSS`` of ``/proc/<pid>/status``). The CPU
used between two passes divided by the wall time between them is the cores the replica
kept busy; with its RSS that is one :class:`~modelyard.core.cost_facts.UsageSample`,
which right-sizing (:mod:`._rightsize`) reads. The parsers are pure; a pid that is gone,
reused by another process (its start time changed) or unreadable is skipped silently,
and on a system without ``/proc`` nothing is sampled.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from modelyard.core.cost_facts import TrafficSample, UsageSample
from modelyard.core.deployments import Replica

#: Launch modes whose pid is a process on this machine.
LOCAL_MODES = frozenset({"fork", "spawn"})


@dataclass(frozen=True)
class ProcStat:
    """From ``/proc/<pid>/stat``: CPU time used (user + system, in clock ticks) and the
    process's start time (ticks after boot; it tells a reused pid apart)."""

    cpu_ticks: int
    start_ticks: int


def parse_stat(text: str) -> ProcStat | None:
    """Parse ``/proc/<pid>/stat``; None if it is not in that format.

    The command name (field 2) is in parentheses and may hold spaces and parentheses
    itself, so the fields are counted from the last ``)``.
    """
    _, paren, rest = text.rpartition(")")
    fields = rest.split()
    # After the name: state is field 3; utime 14, stime 15, starttime 22 (1-based).
    if not paren or len(fields) < 20:
        return None
    try:
        utime, stime, start = int(fields[11]), int(fields[12]), int(fields[19])
    except ValueError:
        return None
    if utime < 0 or stime < 0 or start < 0:
        return None
    return ProcStat(utime + stime, start)


def parse_rss_kb(text: str) -> int | None:
    """``VmRSS`` of ``/proc/<pid>/status`` in KiB; None when absent (a zombie) or odd."""
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                unit = parts[2].lower() if len(parts) > 2 else "kb"
                scale = {"kb": 1, "mb": 1024, "gb": 1024 * 1024}.get(unit)
                return int(parts[1]) * scale if scale is not None else None
            return None
    return None


def _read_proc(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read()


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100


class UsageSampler:
    """Turns successive ``/proc`` reads of replicas into usage samples.

    Args:
        read_text: Reads a ``/proc`` file (tests pass fixed text); raises OSError when
            the file is gone.
        ticks_per_s: Clock ticks per second (``SC_CLK_TCK`` when None).
        enabled: Whether to sample at all (default: on Linux).
    """

    def __init__(
        self,
        *,
        read_text: Callable[[str], str] | None = None,
        ticks_per_s: int | None = None,
        enabled: bool | None = None,
    ) -> None:
        self._read = read_text or _read_proc
        self._ticks = ticks_per_s
        self._enabled = sys.platform.startswith("linux") if enabled is None else enabled
        self._last: dict[str, tuple[int, int, int, float]] = {}

    def sample(self, replicas: Sequence[Replica], time_ms: int, mono_s: float) -> list[UsageSample]:
        """One sample per replica read now and at the previous call.

        Args:
            replicas: The replicas to read (those not active or not local are skipped).
            time_ms: Wall-clock time of the samples, epoch ms.
            mono_s: A monotonic time, for the interval between two reads.
        """
        if not self._enabled:
            return []
        ticks = self._ticks or _clock_ticks()
        out: list[UsageSample] = []
        seen: set[str] = set()
        for r in replicas:
            read = self._read_replica(r)
            if read is None:
                continue
            stat, rss_kb = read
            seen.add(r.id)
            prev = self._last.get(r.id)
            self._last[r.id] = (r.pid, stat.start_ticks, stat.cpu_ticks, mono_s)
            if prev is None or prev[:2] != (r.pid, stat.start_ticks) or mono_s <= prev[3]:
                continue
            interval_s = mono_s - prev[3]
            cpu_s = max(0, stat.cpu_ticks - prev[2]) / ticks
            out.append(
                UsageSample(
                    r.deployment_id,
                    r.id,
                    r.revision,
                    time_ms,
                    interval_s,
                    cpu_s / interval_s,
                    rss_kb / 1024,
                )
            )
        for gone in set(self._last) - seen:
            del self._last[gone]
        return out

    def _read_replica(self, r: Replica) -> tuple[ProcStat, int] | None:
        if not r.active or r.pid <= 0 or r.mode not in LOCAL_MODES:
            return None
        try:
            stat = parse_stat(self._read(f"/proc/{r.pid}/stat"))
            rss_kb = parse_rss_kb(self._read(f"/proc/{r.pid}/status"))
        except OSError:
            return None
        if stat is None or rss_kb is None:
            return None
        return stat, rss_kb


def traffic_sample(
    deployment_id: int, time_ms: int, interval_s: float, values: Mapping[str, float | None]
) -> TrafficSample | None:
    """The traffic of one monitor sample (its exact ``requests`` count and ready
    ``replicas``), or None when the sample measured no interval."""
    requests = values.get("requests")
    if requests is None or interval_s <= 0:
        return None
    replicas = values.get("replicas") or 0.0
    return TrafficSample(deployment_id, time_ms, interval_s, int(requests), int(replicas))


__all__ = [
    "LOCAL_MODES",
    "ProcStat",
    "UsageSampler",
    "parse_rss_kb",
    "parse_stat",
    "traffic_sample",
]
