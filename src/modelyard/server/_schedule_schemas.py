"""Bodies of the pipeline schedules API.

Values (cron, executor, target, name) are checked by the routes with
:mod:`modelyard.pipelines.schedules` (a 400 naming the field); these models only check
types and sizes.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from modelyard.core.schedules import FireRecord, ScheduleRecord
from modelyard.server._schemas import Input


class ScheduleIn(Input):
    """A new schedule of a pipeline file kept in ``MODELYARD_PIPELINES_DIR``."""

    name: str = Field(min_length=1, max_length=64)
    target: str = Field(
        min_length=1,
        max_length=4096,
        description="path.py:attr, relative to MODELYARD_PIPELINES_DIR (or absolute in it).",
    )
    cron: str = Field(
        min_length=1, max_length=128, description="Five fields (UTC) or @hourly, @daily …"
    )
    executor: str = Field(default="local", max_length=256)
    enabled: bool = True


class SchedulePatch(Input):
    """What may change: ``enabled`` and ``cron`` (either re-arms the schedule)."""

    enabled: bool | None = None
    cron: str | None = Field(default=None, min_length=1, max_length=128)


class ScheduleOut(BaseModel):
    id: str
    project: str
    name: str
    target: str
    cron: str
    executor: str
    enabled: bool
    created_by: str
    created_at: float
    armed_at: float = Field(description="Ticks at or before it never fire.")
    last_fire_at: float | None
    next_fire_at: float | None = Field(
        description="When a fire is due next (in the past: waiting for a running fire)."
    )
    last_state: str | None = Field(description="The newest fire's state.")

    @classmethod
    def of(cls, record: ScheduleRecord) -> ScheduleOut:
        return cls.model_validate(record, from_attributes=True)


class FireOut(BaseModel):
    id: int
    project: str
    schedule: str
    trigger: str = Field(description="cron or manual (fire now).")
    tick_at: float | None = Field(description="The cron tick it stands for.")
    missed: int = Field(description="Older missed ticks this one fire stood for (catch-up).")
    requested_by: str
    fired_at: float
    started_at: float | None
    ended_at: float | None
    state: str = Field(description="PENDING, RUNNING, SUCCEEDED or FAILED.")
    pid: int | None
    exit_code: int | None
    run_id: str | None = Field(description="The pipeline run it created, once known.")
    message: str = Field(description="Why it failed, or the tail of its log.")

    @classmethod
    def of(cls, record: FireRecord) -> FireOut:
        return cls.model_validate(record, from_attributes=True)
