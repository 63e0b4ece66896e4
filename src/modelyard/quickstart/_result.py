"""What the quickstart is asked to do, what it did, and how a step fails."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from modelyard.config import Settings

STEP_TITLES = (
    "server",
    "version the dataset",
    "train candidates",
    "register the best",
    "deploy and send traffic",
    "monitor: drift and an alert",
    "cost",
    "lineage",
    "the web UI",
    "tune and a cached pipeline",
    "render for Kubernetes",
)


@dataclass(frozen=True)
class QuickstartOptions:
    """How to run the walk-through.

    Attributes:
        settings: where the server is (or will be started) and ``MODELYARD_HOME``.
        keep_running: leave a server and deployment the quickstart started running.
        traffic_scale: multiplies every traffic phase's duration (0.3: a shorter walk).
        quiet: print nothing (the caller prints the result itself).
    """

    settings: Settings
    keep_running: bool = False
    traffic_scale: float = 1.0
    quiet: bool = False


@dataclass(frozen=True)
class RunSummary:
    """One candidate run: its id, model and held-out metrics."""

    run_id: str
    name: str
    model: str
    metrics: dict[str, float]
    fit_s: float


@dataclass(frozen=True)
class LineageNode:
    """A node of the served model's lineage, as the API names it."""

    kind: str
    label: str


@dataclass(frozen=True)
class MonitorSummary:
    """What the drift demo saw: the rule, whether (and when) it fired, the verdicts."""

    rule: str
    fired: bool
    fired_after_s: float | None
    drift_share: float | None
    drifted_features: tuple[str, ...]
    requests_sent: int


@dataclass(frozen=True)
class CostSummary:
    """The deployment's cost so far, from the ledger (``cost report <deployment>``)."""

    currency: str
    cost: float
    replica_hours: float
    requests: int
    cost_per_1k: float | None
    idle_share: float | None


@dataclass(frozen=True)
class UiPage:
    """A web UI page the walk-through fetched: what it shows, its path, time and size."""

    what: str
    path: str
    ms: float
    size: int


@dataclass(frozen=True)
class TrafficSummary:
    """The load sent through the gateway and what the deployment did with it."""

    requests_sent: int
    requests_failed: int
    p50_ms: float | None
    p99_ms: float | None
    duration_s: float
    max_replicas_seen: int
    scaled_to_zero: bool


@dataclass(frozen=True)
class TuneSummary:
    """Step 10: the sweep's study and best trial, and the two pipeline runs."""

    study: str
    study_run_id: str
    trials: int
    best_value: float
    best_params: dict[str, Any]
    pipeline_runs: tuple[str, ...]
    cached_steps: tuple[int, ...]  # per pipeline run
    steps: int


@dataclass(frozen=True)
class ManifestsSummary:
    """Step 11: the deployment rendered for Kubernetes (nothing applied)."""

    folder: str
    files: tuple[str, ...]
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class QuickstartResult:
    """Everything the walk-through made, as JSON-able values (see :meth:`to_json`)."""

    tracking_uri: str
    started_server: bool
    dataset_ref: str
    runs: tuple[RunSummary, ...]
    best_run_id: str
    model_name: str
    model_version: int
    deployment_name: str
    endpoint: str
    rolled_out: bool
    traffic: TrafficSummary
    monitoring: MonitorSummary
    cost: CostSummary
    lineage: tuple[LineageNode, ...]
    ui_pages: tuple[UiPage, ...] = ()
    tuning: TuneSummary | None = None
    manifests: ManifestsSummary | None = None
    wall_s: float = 0.0

    @property
    def requests_sent(self) -> int:
        return self.traffic.requests_sent

    @property
    def requests_failed(self) -> int:
        return self.traffic.requests_failed

    def to_json(self) -> dict[str, Any]:
        """A plain dict (only str, int, float, bool, None, lists and dicts)."""
        data = dataclasses.asdict(self)
        data["requests_sent"] = self.requests_sent
        data["requests_failed"] = self.requests_failed
        return data


class QuickstartFailed(Exception):
    """A step failed for a reason the user can act on; the message says which and why."""

    def __init__(self, step: int, reason: str) -> None:
        self.step = step
        self.reason = reason
        title = STEP_TITLES[step - 1]
        super().__init__(f"step {step}/{len(STEP_TITLES)} ({title}) failed: {reason}")


class StepError(Exception):
    """Raised inside a step for an expected failure; the step number is added around it."""
