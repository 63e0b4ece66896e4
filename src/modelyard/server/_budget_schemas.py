"""Bodies of the budgets and quotas API.

Values are checked by :class:`~modelyard.cost.budget_service.BudgetService` (a 400
naming the field); these models only check types and sizes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from modelyard.cost.budget_service import (
    DEFAULT_THRESHOLDS,
    BudgetSet,
    BudgetStatus,
    QuotaView,
    budget_json,
)
from modelyard.server._schemas import Input
from modelyard.store.budget_repo import BudgetEvent, BudgetRecord


class BudgetIn(Input):
    """A monthly budget; ``currency`` defaults to the price catalog's (and must be it)."""

    monthly: float = Field(description="The amount per calendar month (UTC), > 0.")
    currency: str | None = Field(default=None, max_length=16)
    alert_at: list[float] = Field(
        default_factory=lambda: list(DEFAULT_THRESHOLDS),
        max_length=100,
        description="Thresholds in percent of the budget, increasing, each in (0, 1000].",
    )
    webhook: str = Field(default="", max_length=2048)
    action: str = Field(default="", max_length=63)


class BudgetOut(BaseModel):
    project: str
    monthly: float
    currency: str
    alert_at: list[float]
    webhook: str
    action: str
    created_by: str
    created_at_ms: int
    updated_at_ms: int
    evaluated_at_ms: int | None
    last: dict[str, Any] = Field(description="The newest evaluation (spent, forecast, at_ms).")

    @classmethod
    def of(cls, record: BudgetRecord) -> BudgetOut:
        return cls.model_validate(budget_json(record))


class BudgetSetOut(BudgetOut):
    webhook_secret: str | None = Field(
        description="Signs this webhook's notifications (HMAC-SHA256); shown only now."
    )

    @classmethod
    def of_set(cls, result: BudgetSet) -> BudgetSetOut:
        return cls.model_validate(
            {**budget_json(result.budget), "webhook_secret": result.webhook_secret}
        )


class ThresholdOut(BaseModel):
    percent: float
    amount: float
    actual_at_ms: int | None = Field(description="When the spend reached it this month.")
    forecast_at_ms: int | None = Field(description="When the forecast reached it this month.")


class BudgetStatusOut(BudgetOut):
    month: str
    month_start_ms: int
    month_end_ms: int
    spent: float
    forecast: float | None = Field(description="Linear on the month to date; None on day one.")
    percent: float
    forecast_percent: float | None
    thresholds: list[ThresholdOut]
    next_evaluation_ms: int | None

    @classmethod
    def of_status(cls, status: BudgetStatus) -> BudgetStatusOut:
        return cls.model_validate(status.to_json())


class BudgetEventOut(BaseModel):
    id: int
    project: str
    time_ms: int
    kind: str
    message: str
    data: dict[str, Any]

    @classmethod
    def of(cls, e: BudgetEvent) -> BudgetEventOut:
        return cls.model_validate(e, from_attributes=True)


class QuotaIn(Input):
    """A project's limits; the ones left out are unlimited."""

    max_replicas: int | None = None
    max_cpu: float | None = None
    max_memory_gb: float | None = None
    max_gpu: float | None = None


class UsageOut(BaseModel):
    replicas: int
    cpu: float
    memory_gb: float
    gpu: float


class QuotaOut(BaseModel):
    project: str
    max_replicas: int | None
    max_cpu: float | None
    max_memory_gb: float | None
    max_gpu: float | None
    updated_by: str
    updated_at_ms: int
    usage: UsageOut = Field(
        description="What the project's active (starting, ready, draining) replicas request."
    )

    @classmethod
    def of(cls, view: QuotaView) -> QuotaOut:
        q, u = view.quota, view.usage
        return cls(
            project=q.project,
            max_replicas=q.max_replicas,
            max_cpu=q.max_cpu,
            max_memory_gb=q.max_memory_gb,
            max_gpu=q.max_gpu,
            updated_by=q.updated_by,
            updated_at_ms=q.updated_at_ms,
            usage=UsageOut(replicas=u.replicas, cpu=u.cpu, memory_gb=u.memory_gb, gpu=u.gpu),
        )
