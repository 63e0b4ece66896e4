"""Bodies of the deployments API."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, Field

from modelyard.core.backends import BackendSpec
from modelyard.core.deployments import DeploymentEvent, Replica, Revision, RuntimeSettings
from modelyard.deploy.service import DeploymentView
from modelyard.server._schemas import Input


class ScalingIn(Input):
    """Scaling settings; omitted ones keep their current (or default) value."""

    min_replicas: int | None = Field(default=None, ge=0)
    max_replicas: int | None = Field(default=None, ge=1)
    target_concurrency: float | None = Field(default=None, gt=0)
    idle_grace_s: float | None = Field(default=None, ge=0)
    policy: str | None = Field(default=None, min_length=1, max_length=64)
    target_utilization: float | None = Field(default=None, gt=0, le=1)
    stable_window_s: float | None = Field(default=None, gt=0)
    panic_window_s: float | None = Field(default=None, gt=0)
    panic_threshold: float | None = Field(default=None, gt=1)
    max_scale_down_rate: float | None = Field(default=None, ge=1)
    tick_s: float | None = Field(default=None, gt=0)
    slo_ms: float | None = Field(default=None, gt=0)
    request_timeout_s: float | None = Field(default=None, gt=0)
    queue_limit: int | None = Field(default=None, ge=0)
    queue_timeout_s: float | None = Field(default=None, gt=0)
    prewarm: bool | None = None
    launch: Literal["fork", "spawn"] | None = None

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class RuntimeIn(Input):
    max_batch_size: int = Field(default=64, ge=1, le=100_000)
    max_latency_ms: float = Field(default=5.0, ge=0)
    batching: bool = True
    cpu: float = Field(default=1.0, gt=0, le=1024)
    memory_mb: int = Field(default=512, gt=0)
    gpu: float = Field(default=0.0, ge=0, le=64)

    def settings(self) -> RuntimeSettings:
        return RuntimeSettings(**self.model_dump())


class BackendIn(Input):
    """Where the replicas run; empty fields take the backend's defaults."""

    kind: Literal["local", "kubernetes", "ray"] = "local"
    namespace: str = Field(default="", max_length=63)
    autoscaler: Literal["", "modelyard", "hpa", "keda", "knative", "serve"] = ""
    address: str = Field(default="", max_length=512)
    image: str = Field(default="", max_length=512)

    def spec(self) -> BackendSpec:
        return BackendSpec(**self.model_dump())


class DeploymentCreate(Input):
    name: str = Field(min_length=1, max_length=63)
    model: str = Field(min_length=1, max_length=1024)
    scaling: ScalingIn = Field(default_factory=ScalingIn)
    runtime: RuntimeIn | None = None
    backend: BackendIn | None = None


class DeploymentUpdate(Input):
    model: str | None = Field(default=None, min_length=1, max_length=1024)
    strategy: Literal["canary", "rolling"] = "rolling"
    steps: list[int] = Field(default_factory=lambda: [10, 50, 100], min_length=1, max_length=20)
    step_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_p99_ratio: float = Field(default=1.5, gt=0)
    scaling: ScalingIn = Field(default_factory=ScalingIn)
    runtime: RuntimeIn | None = None


class TrafficSet(Input):
    """Weights by model version, e.g. ``{"3": 90, "4": 10}``."""

    weights: dict[int, int] = Field(min_length=1, max_length=100)


class ShadowSet(Input):
    version: int = Field(ge=1)
    percent: float = Field(ge=0, le=100)


class RevisionOut(BaseModel):
    number: int
    model_name: str
    model_version: int
    model_ref: str
    state: str
    error: str
    weight: int
    shadow_percent: float
    settings: dict[str, Any]
    created_at_ms: int

    @classmethod
    def of(cls, r: Revision) -> RevisionOut:
        data = dict(r.__dict__)
        data["settings"] = asdict(r.settings)
        return cls(**data)


class ReplicaOut(BaseModel):
    id: str
    revision: int
    pid: int
    port: int
    state: str
    mode: str
    standby: bool
    cpu: float
    memory_mb: int
    gpu: float
    started_at_ms: int
    ready_at_ms: int | None
    stopped_at_ms: int | None
    exit_reason: str

    @classmethod
    def of(cls, r: Replica) -> ReplicaOut:
        data = dict(r.__dict__)
        data.pop("deployment_id")
        return cls(**data)


class DeploymentOut(BaseModel):
    name: str
    project: str
    endpoint: str
    status: str
    stable_revision: int | None
    previous_stable: int | None
    scaling: dict[str, Any]
    backend: dict[str, Any]
    rollout: dict[str, Any] | None
    traffic: dict[str, int]
    shadow: dict[str, float]
    revisions: list[RevisionOut]
    replicas: list[ReplicaOut]
    created_by: str
    created_at_ms: int
    updated_at_ms: int

    @classmethod
    def of(cls, view: DeploymentView) -> DeploymentOut:
        d = view.deployment
        return cls(
            name=d.name,
            project=d.project,
            endpoint=view.endpoint,
            status=d.status,
            stable_revision=d.stable_revision,
            previous_stable=d.previous_stable,
            scaling=asdict(d.config),
            backend=asdict(d.backend),
            rollout=asdict(d.rollout) if d.rollout is not None else None,
            traffic={str(n): w for n, w in d.weights.items()},
            shadow={str(n): p for n, p in d.shadows.items()},
            revisions=[RevisionOut.of(r) for r in d.revisions],
            replicas=[ReplicaOut.of(r) for r in view.replicas],
            created_by=d.created_by,
            created_at_ms=d.created_at_ms,
            updated_at_ms=d.updated_at_ms,
        )


class ManifestsOut(BaseModel):
    """Rendered manifests: file name -> YAML text."""

    files: dict[str, str]


class EventOut(BaseModel):
    id: int
    deployment: str
    time_ms: int
    kind: str
    revision: int | None
    message: str
    data: dict[str, Any]

    @classmethod
    def of(cls, e: DeploymentEvent) -> EventOut:
        return cls(**e.__dict__)
