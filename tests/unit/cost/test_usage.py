"""Replica usage from ``/proc`` text (fixed, no process read) and the exact request count
a monitor sample carries."""

from __future__ import annotations

import sys

import pytest

from modelyard.core.cost_facts import TrafficSample, UsageSample
from modelyard.core.deployments import Replica
from modelyard.cost.usage import UsageSampler, parse_rss_kb, parse_stat, traffic_sample
from modelyard.deploy.signals import GatewaySnapshot
from modelyard.monitor._live import live_values

# A real line of /proc/<pid>/stat whose command name holds a space and a parenthesis.
STAT = (
    "4242 (python3 (replica)) S 1 4242 4242 0 -1 4194560 4711 0 0 0 {utime} {stime} 0 0 20 0 "
    "3 0 {start} 262144000 25000 18446744073709551615 1 1 0 0 0 0 0 16781312 2 0 0 0 17 1 0 0"
)
STATUS = "Name:\tpython3\nState:\tS (sleeping)\nVmPeak:\t  400000 kB\nVmRSS:\t  {rss} kB\n"


def test_parse_stat_counts_fields_after_the_command_name() -> None:
    stat = parse_stat(STAT.format(utime=150, stime=50, start=98765))
    assert stat is not None
    assert (stat.cpu_ticks, stat.start_ticks) == (200, 98765)
    assert parse_stat("4242 (x) S 1 2") is None
    assert parse_stat("no parenthesis at all") is None
    assert parse_stat(STAT.format(utime="x", stime=1, start=1)) is None


def test_parse_rss() -> None:
    assert parse_rss_kb(STATUS.format(rss=204800)) == 204800
    assert parse_rss_kb("Name:\tzombie\nState:\tZ (zombie)\n") is None
    assert parse_rss_kb("VmRSS:\t  2 MB\n") == 2048
    assert parse_rss_kb("VmRSS:\t  lots\n") is None


def _replica(rid: str, pid: int, *, mode: str = "fork", state: str = "ready") -> Replica:
    return Replica(
        id=rid, deployment_id=7, revision=2, pid=pid, port=1, state=state,  # type: ignore[arg-type]
        mode=mode, standby=False, cpu=1.0, memory_mb=512, started_at_ms=0, ready_at_ms=0,
        stopped_at_ms=None, exit_reason="",
    )  # fmt: skip


class _Proc:
    """A fake /proc: per pid, (cpu ticks, start ticks, rss kB); a missing pid raises."""

    def __init__(self) -> None:
        self.procs: dict[int, tuple[int, int, int]] = {}

    def read(self, path: str) -> str:
        pid = int(path.split("/")[2])
        if pid not in self.procs:
            raise FileNotFoundError(path)
        ticks, start, rss = self.procs[pid]
        if path.endswith("/stat"):
            return STAT.format(utime=ticks, stime=0, start=start)
        return STATUS.format(rss=rss)


def test_sampler_measures_cores_between_two_reads() -> None:
    proc = _Proc()
    sampler = UsageSampler(read_text=proc.read, ticks_per_s=100, enabled=True)
    replicas = [_replica("a", 10), _replica("b", 11)]
    proc.procs = {10: (1000, 5, 102400), 11: (0, 6, 51200)}
    assert sampler.sample(replicas, 1_000, 100.0) == []  # a first read has no interval
    proc.procs = {10: (1750, 5, 204800), 11: (100, 6, 51200)}
    samples = sampler.sample(replicas, 11_000, 110.0)
    assert samples == [
        UsageSample(7, "a", 2, 11_000, 10.0, 0.75, 200.0),  # 7.5 CPU-s in 10 s, 200 MiB
        UsageSample(7, "b", 2, 11_000, 10.0, 0.1, 50.0),
    ]


def test_dead_reused_and_foreign_pids_are_skipped_silently() -> None:
    proc = _Proc()
    sampler = UsageSampler(read_text=proc.read, ticks_per_s=100, enabled=True)
    replicas = [
        _replica("gone", 20),
        _replica("reused", 21),
        _replica("stopped", 22, state="stopped"),
        _replica("remote", 23, mode="kubernetes"),
    ]
    proc.procs = {20: (0, 1, 1), 21: (0, 1, 1), 22: (0, 1, 1), 23: (0, 1, 1)}
    sampler.sample(replicas, 0, 0.0)
    proc.procs = {21: (500, 2, 1), 22: (500, 1, 1), 23: (500, 1, 1)}  # 21 is a new process
    assert sampler.sample(replicas, 10_000, 10.0) == []
    proc.procs = {21: (600, 2, 1)}
    assert [s.replica_id for s in sampler.sample(replicas, 20_000, 20.0)] == ["reused"]


def test_nothing_is_sampled_when_disabled_or_off_linux() -> None:
    def boom(path: str) -> str:
        raise AssertionError(f"read {path}")

    assert UsageSampler(read_text=boom, enabled=False).sample([_replica("a", 1)], 0, 0.0) == []
    if not sys.platform.startswith("linux"):
        assert UsageSampler(read_text=boom).sample([_replica("a", 1)], 0, 0.0) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sampler_reads_this_very_process() -> None:
    import os

    sampler = UsageSampler()
    me = [_replica("self", os.getpid())]
    sampler.sample(me, 0, 0.0)
    sum(i * i for i in range(200_000))  # burn a little CPU
    (sample,) = sampler.sample(me, 1_000, 1.0)
    assert sample.rss_mb > 10
    assert sample.cpu_cores >= 0


def _snap(now_s: float, completions: int) -> GatewaySnapshot:
    revision = {"completions": completions, "errors": 0, "latency_buckets": []}
    return GatewaySnapshot.parse(
        {"now_s": now_s, "deployments": {"d": {"revisions": {"1": revision, "2": revision}}}}
    )


def test_a_sample_carries_the_exact_request_count() -> None:
    values = live_values(_snap(100.0, 1000), _snap(107.0, 1333), "d", replicas=2)
    assert values["requests"] == 666.0  # 333 per revision
    assert values["rps"] == pytest.approx(666 / 7)
    assert live_values(None, _snap(100.0, 5), "d", replicas=1)["requests"] is None
    assert traffic_sample(3, 5_000, 7.0, values) == TrafficSample(3, 5_000, 7.0, 666, 2)
    assert traffic_sample(3, 5_000, 7.0, {"requests": None, "replicas": 2.0}) is None
