"""Monitoring entities: a deployment's monitoring settings, prediction-log segments,
live samples, drift results, alert rules, their history and silences.

Frozen snapshots read from the store; times are epoch milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from modelyard.core._json_settings import JsonSettings
from modelyard.core._json_settings import check as _check


@dataclass(frozen=True)
class MonitorConfig(JsonSettings):
    """How a deployment is monitored.

    Attributes:
        log_sample_rate: Share of requests each replica logs, in (0, 1].
        log_max_bytes_per_s: Per-replica byte budget of logged inputs and outputs.
        log_retention_mb: Logged segments kept per deployment; the oldest go first.
        log_retention_days: Logged segments older than this are removed.
        reference: A dataset version (``name@vN``) to compare with; empty: the dataset
            version that trained the served model, found through lineage.
        drift_window_s: The window of logged traffic the periodic drift check reads.
        drift_interval_s: How often the monitor loop recomputes drift (0: only when
            a rule needs it or a user asks).
        stattest: A statistical test for every feature (empty: Evidently's defaults).
        drift_threshold: Overrides the chosen test's threshold (0: the test's default).
        drift_share: The share of drifted features that makes the dataset drifted.
        min_rows: Fewer logged rows than this in a window: no drift verdict.
    """

    settings_kind: ClassVar[str] = "monitoring"

    log_sample_rate: float = 1.0
    log_max_bytes_per_s: int = 256 << 10
    log_retention_mb: int = 1024
    log_retention_days: float = 30.0
    reference: str = ""
    drift_window_s: float = 3600.0
    drift_interval_s: float = 60.0
    stattest: str = ""
    drift_threshold: float = 0.0
    drift_share: float = 0.5
    min_rows: int = 100

    def __post_init__(self) -> None:
        _check(
            0.0 < self.log_sample_rate <= 1.0,
            f"log_sample_rate must be in (0, 1], got {self.log_sample_rate}",
        )
        _check(self.log_max_bytes_per_s >= 1024, "log_max_bytes_per_s must be >= 1024")
        _check(self.log_retention_mb >= 1, "log_retention_mb must be >= 1")
        _check(
            math.isfinite(self.log_retention_days) and self.log_retention_days > 0,
            "log_retention_days must be > 0",
        )
        _check(
            math.isfinite(self.drift_window_s) and 10 <= self.drift_window_s <= 30 * 86400,
            "drift_window_s must be between 10 s and 30 days",
        )
        _check(
            self.drift_interval_s == 0 or 5 <= self.drift_interval_s <= 86400,
            "drift_interval_s must be 0 (off) or between 5 s and a day",
        )
        _check(
            self.drift_threshold >= 0 and math.isfinite(self.drift_threshold),
            "drift_threshold must be >= 0",
        )
        _check(0 < self.drift_share <= 1, "drift_share must be in (0, 1]")
        _check(self.min_rows >= 1, "min_rows must be >= 1")


@dataclass(frozen=True)
class PredictionSegment:
    """One Parquet file of the log in the artifact store: ``source`` ``replica``
    (predictions with their features) or ``gateway`` (requests as callers saw them)."""

    id: int
    deployment_id: int
    source: str
    revision: int
    batch: str
    first_ms: int
    last_ms: int
    rows: int
    size: int
    digest: str
    created_at_ms: int


@dataclass(frozen=True)
class MonitorSample:
    """What the gateway saw of a deployment over one sampling interval."""

    deployment_id: int
    time_ms: int
    interval_s: float
    values: dict[str, float | None]


@dataclass(frozen=True)
class DriftRecord:
    """A drift computation: the window, the reference, and the per-feature report."""

    id: int
    deployment_id: int
    time_ms: int
    window_start_ms: int
    window_end_ms: int
    reference: str
    rows: int
    drift_share: float
    dataset_drift: bool
    report: dict[str, Any]


@dataclass(frozen=True)
class AlertRuleRecord:
    """A stored alert rule of a deployment, with its evaluation state."""

    id: int
    deployment_id: int
    deployment: str
    project: str
    rule: str
    webhook_url: str
    action: str
    hysteresis: float
    state: dict[str, Any]
    enabled: bool
    created_by: str
    created_at_ms: int


@dataclass(frozen=True)
class AlertEvent:
    """A line of alert history: a state change, a notification attempt, a silence."""

    id: int
    rule_id: int | None
    deployment: str
    time_ms: int
    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SilenceRecord:
    """Alerts of a deployment (all, or one rule) are not notified while this lasts."""

    id: int
    deployment_id: int
    rule: str
    starts_ms: int
    ends_ms: int
    comment: str
    created_by: str


@dataclass(frozen=True)
class ActionRecord:
    """A registered action an alert rule can trigger (a command or a webhook)."""

    id: int
    project: str
    name: str
    kind: str
    config: dict[str, Any]
    created_by: str
    created_at_ms: int


@dataclass(frozen=True)
class FeedbackBatch:
    """Ground-truth labels a user sent for logged predictions."""

    id: int
    deployment_id: int
    time_ms: int
    rows: int
    matched: int
    digest: str
    size: int
