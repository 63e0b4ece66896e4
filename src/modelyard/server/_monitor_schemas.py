"""Bodies of the monitoring API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from modelyard.core.monitoring import (
    ActionRecord,
    AlertEvent,
    AlertRuleRecord,
    DriftRecord,
    MonitorConfig,
    SilenceRecord,
)
from modelyard.server._schemas import Input


class MonitorConfigIn(Input):
    """Monitoring settings; omitted ones keep their current (or default) value."""

    log_sample_rate: float | None = Field(default=None, gt=0, le=1)
    log_max_bytes_per_s: int | None = Field(default=None, ge=1024)
    log_retention_mb: int | None = Field(default=None, ge=1)
    log_retention_days: float | None = Field(default=None, gt=0)
    reference: str | None = Field(default=None, max_length=300)
    drift_window_s: float | None = Field(default=None, ge=10, le=30 * 86400)
    drift_interval_s: float | None = Field(default=None, ge=0, le=86400)
    stattest: str | None = Field(default=None, max_length=32)
    drift_threshold: float | None = Field(default=None, ge=0)
    drift_share: float | None = Field(default=None, gt=0, le=1)
    min_rows: int | None = Field(default=None, ge=1)

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class MonitorConfigOut(BaseModel):
    log_sample_rate: float
    log_max_bytes_per_s: int
    log_retention_mb: int
    log_retention_days: float
    reference: str
    drift_window_s: float
    drift_interval_s: float
    stattest: str
    drift_threshold: float
    drift_share: float
    min_rows: int

    @classmethod
    def of(cls, config: MonitorConfig) -> MonitorConfigOut:
        return cls.model_validate(config, from_attributes=True)


class DriftOut(BaseModel):
    id: int
    time_ms: int
    window_start_ms: int
    window_end_ms: int
    reference: str
    rows: int
    drift_share: float
    dataset_drift: bool
    report: dict[str, Any]

    @classmethod
    def of(cls, record: DriftRecord) -> DriftOut:
        return cls.model_validate(record, from_attributes=True)


class RulesIn(Input):
    rules: list[str] = Field(min_length=1, max_length=50)
    webhook: str = Field(default="", max_length=2048)
    action: str = Field(default="", max_length=63)
    hysteresis: float = Field(default=0.1, ge=0, lt=1)


class RuleOut(BaseModel):
    id: int
    deployment: str
    rule: str
    webhook: str
    action: str
    hysteresis: float
    state: dict[str, Any]
    enabled: bool
    created_by: str
    created_at_ms: int

    @classmethod
    def of(cls, r: AlertRuleRecord) -> RuleOut:
        return cls(
            id=r.id,
            deployment=r.deployment,
            rule=r.rule,
            webhook=r.webhook_url,
            action=r.action,
            hysteresis=r.hysteresis,
            state=r.state,
            enabled=r.enabled,
            created_by=r.created_by,
            created_at_ms=r.created_at_ms,
        )


class RulesAdded(BaseModel):
    rules: list[RuleOut]
    webhook_secret: str | None = Field(
        description="Signs this webhook's notifications (HMAC-SHA256); shown only now."
    )


class AlertEventOut(BaseModel):
    id: int
    rule_id: int | None
    deployment: str
    time_ms: int
    kind: str
    message: str
    data: dict[str, Any]

    @classmethod
    def of(cls, e: AlertEvent) -> AlertEventOut:
        return cls.model_validate(e, from_attributes=True)


class SilenceIn(Input):
    duration: str = Field(min_length=1, max_length=32, description="e.g. 30m, 2h, 1d")
    rule: str = Field(default="", max_length=300)
    comment: str = Field(default="", max_length=500)


class SilenceOut(BaseModel):
    id: int
    rule: str
    starts_ms: int
    ends_ms: int
    comment: str
    created_by: str

    @classmethod
    def of(cls, s: SilenceRecord) -> SilenceOut:
        return cls.model_validate(s, from_attributes=True)


class ActionIn(Input):
    name: str = Field(min_length=1, max_length=63)
    command: list[str] = Field(default_factory=list, max_length=256)
    webhook: str = Field(default="", max_length=2048)
    timeout_s: float = Field(default=300.0, ge=1, le=86400)


class ActionOut(BaseModel):
    name: str
    kind: str
    command: list[str] | None
    webhook: str | None
    timeout_s: float
    created_by: str
    created_at_ms: int

    @classmethod
    def of(cls, a: ActionRecord) -> ActionOut:
        # A webhook action's signing secret is never shown again.
        return cls(
            name=a.name,
            kind=a.kind,
            command=list(a.config["argv"]) if a.kind == "command" else None,
            webhook=str(a.config["url"]) if a.kind == "webhook" else None,
            timeout_s=float(a.config.get("timeout_s", 300.0)),
            created_by=a.created_by,
            created_at_ms=a.created_at_ms,
        )


class ActionAdded(ActionOut):
    webhook_secret: str | None = None


class FeedbackOut(BaseModel):
    id: int
    rows: int
    matched: int
    quality: dict[str, Any] | None


class ExportOut(BaseModel):
    prometheus_rules: str
    grafana_dashboard: dict[str, Any]
