"""Pipeline schedule entities: a schedule and one fire of it, as read from the store.

Times are epoch seconds. Values here are frozen snapshots, never live handles.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Fire states: queued by fire-now, its subprocess running, and how it ended.
PENDING, RUNNING, SUCCEEDED, FAILED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED"
#: A fire in one of these states blocks another (overlap policy ``forbid``).
ACTIVE_FIRE_STATES = (PENDING, RUNNING)
#: The run tag a pipeline run started by a schedule carries: the schedule's id.
PIPELINE_SCHEDULE_TAG = "modelyard.pipeline.schedule"


@dataclass(frozen=True)
class ScheduleRecord:
    """A pipeline schedule.

    Attributes:
        target: ``path.py:attr`` relative to ``MODELYARD_PIPELINES_DIR``.
        cron: five fields (UTC) or an alias such as ``@daily``.
        executor: ``local``, ``ray`` or ``ray://host:port``.
        created_by: the owner: its fires run with a token of this user.
        armed_at: when it was created, re-enabled or given a new cron; ticks at or
            before it never fire.
        last_fire_at: when its newest fire started (None: never).
        next_fire_at: when a fire is due next (None while disabled).
        last_state: its newest fire's state (None: never fired).
    """

    id: str
    project: str
    name: str
    target: str
    cron: str
    executor: str
    enabled: bool
    created_by: str
    created_at: float
    armed_at: float
    last_fire_at: float | None
    next_fire_at: float | None
    last_state: str | None = None


@dataclass(frozen=True)
class FireRecord:
    """One fire of a schedule: a ``modelyard pipeline run`` subprocess of the server.

    Attributes:
        trigger: ``cron`` or ``manual`` (fire now).
        tick_at: the cron tick it stands for (None for a manual fire).
        missed: older ticks this one fire stood for (catch-up).
        fired_at: when it was decided (cron) or asked for (manual).
        started_at: when its subprocess started.
        state: one of PENDING, RUNNING, SUCCEEDED, FAILED.
        run_id: the pipeline run it made, once known.
        token_id: the token it ran with (revoked when it ended).
        message: why it failed, or the tail of its log.
    """

    id: int
    schedule_id: str
    project: str
    schedule: str
    trigger: str
    tick_at: float | None
    missed: int
    requested_by: str
    fired_at: float
    started_at: float | None
    ended_at: float | None
    state: str
    pid: int | None
    exit_code: int | None
    run_id: str | None
    token_id: str | None
    message: str
