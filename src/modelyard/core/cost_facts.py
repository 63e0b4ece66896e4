"""The facts the cost ledger is built from, as the store reads them (frozen snapshots).

Each is something the platform records anyway: a replica's lifetime with what it
requested, a run's duration, bytes kept in the artifact index, requests counted by the
monitor loop. The ledger (:mod:`modelyard.cost._ledger`) prices them; nothing here knows
a price. Times are epoch milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Tags = Mapping[str, str]


@dataclass(frozen=True)
class ReplicaFact:
    """One replica's lifetime: billed from ``started_ms`` to ``stopped_ms`` (None: it still
    runs, billed up to the period's end or "now", whichever is earlier)."""

    replica_id: str
    project: str
    deployment: str
    deployment_id: int
    revision: int
    cpu: float
    memory_mb: int
    gpu: float
    started_ms: int
    stopped_ms: int | None


@dataclass(frozen=True)
class RunFact:
    """One run: billed from ``start_ms`` to ``end_ms`` (None: still running). Its tags
    are in :attr:`CostFacts.runs_info` (``cost.cpu``, ``cost.memory_gb``, ``cost.gpu``
    override the catalog's capacity per run)."""

    run_id: str
    project: str
    start_ms: int
    end_ms: int | None


@dataclass(frozen=True)
class RunInfo:
    """A run's name and tags."""

    name: str
    tags: Tags = field(default_factory=dict)


@dataclass(frozen=True)
class StorageFact:
    """``bytes`` indexed in ``namespace`` since ``created_ms`` (kept until now).

    The owner is resolved from the namespace: ``project`` ("" when it cannot be), and
    ``deployment`` / ``run_id`` ("" when not a deployment's or a run's).
    """

    namespace: str
    project: str
    deployment: str
    deployment_id: int | None
    run_id: str
    created_ms: int
    bytes: int


@dataclass(frozen=True)
class TrafficFact:
    """What the monitor loop counted for a deployment in one bucket (a minute).

    Attributes:
        bucket_ms: the bucket's start; a bucket belongs to the period holding it.
        requests: requests answered (exact count from the gateway's counters).
        sampled_s: seconds of monitor intervals beginning in the bucket.
        replica_s: ready replicas x interval seconds, summed over those intervals.
        idle_replica_s: the part of ``replica_s`` in intervals that answered no request.
    """

    project: str
    deployment: str
    deployment_id: int
    bucket_ms: int
    requests: int
    sampled_s: float
    replica_s: float
    idle_replica_s: float


@dataclass(frozen=True)
class CostFacts:
    """Everything one ledger period needs.

    Attributes:
        now_ms: "now": what still runs is billed up to here (never past the period end).
        project_tags: project name → its tags.
        deployment_tags: deployment id → its tags.
        runs_info: run id → name and tags, for every run a run or storage fact names.
    """

    now_ms: int
    replicas: tuple[ReplicaFact, ...] = ()
    runs: tuple[RunFact, ...] = ()
    storage: tuple[StorageFact, ...] = ()
    traffic: tuple[TrafficFact, ...] = ()
    project_tags: Mapping[str, Tags] = field(default_factory=dict)
    deployment_tags: Mapping[int, Tags] = field(default_factory=dict)
    runs_info: Mapping[str, RunInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class TrafficSample:
    """One monitor-loop interval of a deployment: requests answered and ready replicas."""

    deployment_id: int
    time_ms: int
    interval_s: float
    requests: int
    replicas: int


@dataclass(frozen=True)
class UsageSample:
    """A replica's measured use over one monitor interval.

    Attributes:
        cpu_cores: CPU seconds used / wall seconds elapsed (1.0: one core busy).
        rss_mb: resident memory at the sample, MiB.
    """

    deployment_id: int
    replica_id: str
    revision: int
    time_ms: int
    interval_s: float
    cpu_cores: float
    rss_mb: float
