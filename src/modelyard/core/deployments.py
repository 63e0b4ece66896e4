"""Deployment entities: desired state (config, revisions, traffic, rollout) and replicas.

A deployment serves one or more *revisions*; a revision is a model version plus runtime
settings. Traffic weights (percent, summing to 100) and shadow percentages belong to
revisions. Replicas are processes of one revision. All times are epoch milliseconds.
Values here are frozen snapshots read from the store, never live handles.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal

from modelyard.core._json_settings import JsonSettings
from modelyard.core._json_settings import check as _check
from modelyard.core.backends import BackendSpec
from modelyard.core.errors import InvalidInput

DEPLOYMENT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

RevisionState = Literal["pending", "ready", "failed", "retired"]
ReplicaState = Literal["starting", "ready", "draining", "stopped", "failed"]
ACTIVE_REPLICA_STATES: tuple[ReplicaState, ...] = ("starting", "ready", "draining")
Strategy = Literal["canary", "rolling"]
RolloutPhase = Literal["starting", "stepping", "done", "rolled_back", "aborted"]


def validate_deployment_name(name: str) -> str:
    """A DNS-label-like name: it becomes the gateway path ``/<name>/``.

    Raises:
        InvalidInput: the name is empty, too long or has characters other than a-z, 0-9, -.
    """
    if not DEPLOYMENT_NAME.fullmatch(name):
        raise InvalidInput(
            f"deployment name {name!r}: use 1-63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class ScalingConfig(JsonSettings):
    """How a deployment scales and how its gateway treats requests.

    Attributes:
        min_replicas: lower bound per serving revision; 0 allows scale-to-zero.
        max_replicas: upper bound per serving revision.
        target_concurrency: requests one replica should serve at once.
        idle_grace_s: how long without traffic before the last replica goes.
        policy: autoscaling policy (``kpa``, ``default``, ``hpa``, ``ray``, ``fixed:N``).
        target_utilization: share of ``target_concurrency`` the KPA policy aims for.
        stable_window_s: KPA stable window.
        panic_window_s: KPA panic window.
        panic_threshold: panic when panic-window demand exceeds this multiple of capacity.
        max_scale_down_rate: at most ``ready / rate`` replicas after one scale-down tick.
        tick_s: how often the policy decides.
        slo_ms: latency SLO for the ``default`` policy.
        request_timeout_s: gateway timeout per request.
        queue_limit: requests the gateway holds while no replica is ready.
        queue_timeout_s: how long a held request waits before 503.
        prewarm: keep one loaded, unrouted standby process per serving revision, so
            a scale-from-zero only has to route to it.
        launch: ``fork`` (from a pre-imported zygote) or ``spawn`` (a fresh interpreter).
    """

    settings_kind: ClassVar[str] = "scaling"

    min_replicas: int = 0
    max_replicas: int = 4
    target_concurrency: float = 4.0
    idle_grace_s: float = 30.0
    policy: str = "kpa"
    target_utilization: float = 0.7
    stable_window_s: float = 60.0
    panic_window_s: float = 6.0
    panic_threshold: float = 2.0
    max_scale_down_rate: float = 2.0
    tick_s: float = 2.0
    slo_ms: float = 500.0
    request_timeout_s: float = 60.0
    queue_limit: int = 100
    queue_timeout_s: float = 30.0
    prewarm: bool = False
    launch: Literal["fork", "spawn"] = "fork"

    def __post_init__(self) -> None:
        _check(self.min_replicas >= 0, f"min_replicas must be >= 0, got {self.min_replicas}")
        _check(self.max_replicas >= 1, f"max_replicas must be >= 1, got {self.max_replicas}")
        _check(
            self.min_replicas <= self.max_replicas,
            f"min_replicas ({self.min_replicas}) must not exceed max_replicas "
            f"({self.max_replicas})",
        )
        _check(
            self.target_concurrency > 0,
            f"target_concurrency must be > 0, got {self.target_concurrency}",
        )
        _check(self.idle_grace_s >= 0, f"idle_grace_s must be >= 0, got {self.idle_grace_s}")
        _check(
            0 < self.target_utilization <= 1,
            f"target_utilization must be in (0, 1], got {self.target_utilization}",
        )
        _check(
            self.stable_window_s >= self.tick_s > 0,
            "stable_window_s must be >= tick_s > 0",
        )
        _check(
            0 < self.panic_window_s <= self.stable_window_s,
            "panic_window_s must be in (0, stable_window_s]",
        )
        _check(self.panic_threshold > 1, "panic_threshold must be > 1")
        _check(self.max_scale_down_rate >= 1, "max_scale_down_rate must be >= 1")
        _check(self.slo_ms > 0, "slo_ms must be > 0")
        _check(self.request_timeout_s > 0, "request_timeout_s must be > 0")
        _check(self.queue_limit >= 0, "queue_limit must be >= 0")
        _check(self.queue_timeout_s > 0, "queue_timeout_s must be > 0")
        _check(self.launch in ("fork", "spawn"), f"launch must be fork or spawn: {self.launch}")


@dataclass(frozen=True)
class RuntimeSettings:
    """How each replica of a revision runs (and what the cost ledger charges for it)."""

    max_batch_size: int = 64
    max_latency_ms: float = 5.0
    batching: bool = True
    cpu: float = 1.0
    memory_mb: int = 512
    gpu: float = 0.0

    def __post_init__(self) -> None:
        _check(self.max_batch_size >= 1, "max_batch_size must be >= 1")
        _check(self.max_latency_ms >= 0, "max_latency_ms must be >= 0")
        _check(self.cpu > 0, "cpu must be > 0")
        _check(self.memory_mb > 0, "memory_mb must be > 0")
        _check(self.gpu >= 0, "gpu must be >= 0")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuntimeSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Rollout:
    """A rollout in progress (or its final state).

    Attributes:
        strategy: ``canary`` (traffic steps with analysis) or ``rolling`` (replicas one
            by one).
        target: the revision being rolled out.
        stable: the revision it replaces.
        steps: canary traffic percentages, ending at 100.
        step_index: index into ``steps`` of the current step (-1: not started yet).
        step_interval_s: seconds per canary step.
        max_error_rate: the canary's error rate above which it is rolled back.
        max_p99_ratio: canary p99 / stable p99 above which it is rolled back.
        step_started_ms: when the current step began.
        phase: ``starting`` (waiting for the target to be ready), ``stepping``, ``done``,
            ``rolled_back`` or ``aborted``.
        replaced: for ``rolling``: how many replicas of the stable revision have been
            replaced so far; ``total``: how many there were to replace.
    """

    strategy: Strategy
    target: int
    stable: int
    steps: tuple[int, ...] = (10, 50, 100)
    step_index: int = -1
    step_interval_s: float = 60.0
    max_error_rate: float = 0.01
    max_p99_ratio: float = 1.5
    step_started_ms: int = 0
    phase: RolloutPhase = "starting"
    replaced: int = 0
    total: int = 0

    def __post_init__(self) -> None:
        _check(self.strategy in ("canary", "rolling"), f"unknown strategy {self.strategy!r}")
        _check(bool(self.steps), "steps: give at least one percentage")
        _check(
            all(0 < s <= 100 for s in self.steps),
            f"steps must be percentages in (0, 100], got {list(self.steps)}",
        )
        _check(
            list(self.steps) == sorted(set(self.steps)),
            f"steps must increase, got {list(self.steps)}",
        )
        _check(self.steps[-1] == 100, f"the last step must be 100, got {self.steps[-1]}")
        _check(self.step_interval_s > 0, "step_interval_s must be > 0")
        _check(0 <= self.max_error_rate <= 1, "max_error_rate must be in [0, 1]")
        _check(self.max_p99_ratio > 0, "max_p99_ratio must be > 0")

    @property
    def active(self) -> bool:
        return self.phase in ("starting", "stepping")

    def to_json(self) -> str:
        data = asdict(self)
        data["steps"] = list(self.steps)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rollout:
        known = {f.name for f in fields(cls)}
        clean = {k: v for k, v in data.items() if k in known}
        clean["steps"] = tuple(clean.get("steps", (100,)))
        return cls(**clean)


@dataclass(frozen=True)
class Revision:
    number: int
    model_name: str
    model_version: int
    model_ref: str
    settings: RuntimeSettings
    state: RevisionState
    error: str
    weight: int
    shadow_percent: float
    created_at_ms: int


@dataclass(frozen=True)
class Replica:
    """One replica process (also the cost ledger's record of it)."""

    id: str
    deployment_id: int
    revision: int
    pid: int
    port: int
    state: ReplicaState
    mode: str
    standby: bool
    cpu: float
    memory_mb: int
    started_at_ms: int
    ready_at_ms: int | None
    stopped_at_ms: int | None
    exit_reason: str
    gpu: float = 0.0

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_REPLICA_STATES


@dataclass(frozen=True)
class Deployment:
    id: int
    project: str
    name: str
    config: ScalingConfig
    status: Literal["active", "deleting", "deleted"]
    stable_revision: int | None
    previous_stable: int | None
    rollout: Rollout | None
    revisions: tuple[Revision, ...]
    generation: int
    created_by: str
    created_at_ms: int
    updated_at_ms: int
    backend: BackendSpec = field(default_factory=BackendSpec)

    def revision(self, number: int) -> Revision | None:
        for rev in self.revisions:
            if rev.number == number:
                return rev
        return None

    @property
    def weights(self) -> dict[int, int]:
        return {r.number: r.weight for r in self.revisions if r.weight > 0}

    @property
    def shadows(self) -> dict[int, float]:
        return {r.number: r.shadow_percent for r in self.revisions if r.shadow_percent > 0}


@dataclass(frozen=True)
class DeploymentEvent:
    """A scaling, rollout, traffic or replica decision, with its reason and inputs."""

    id: int
    deployment: str
    time_ms: int
    kind: str
    revision: int | None
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventDraft:
    """An event to record (the store stamps its id and time)."""

    kind: str
    message: str
    revision: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RevisionDraft:
    """A revision to add (the store numbers it)."""

    model_name: str
    model_version: int
    model_ref: str
    settings: RuntimeSettings
    weight: int = 0
    shadow_percent: float = 0.0
