"""Pipeline schedules as pure decisions: cron parsing and which fire is due now.

A schedule fires its pipeline at the ticks of a cron string (five fields, UTC, or an
alias such as ``@daily``). The server's scheduler (:mod:`._scheduler`) asks
:func:`plan_fires` on every pass; nothing here reads a clock or does I/O.

The rules, each an invariant tested with Hypothesis:

- A fire started at or after a tick *covers* it, whether the cron or ``run`` (fire now)
  started it. A covered tick never fires again.
- Catch-up: after downtime (the server stopped, or the schedule's previous fire still
  running), the ticks missed meanwhile fire **once**, as one fire standing for the newest
  of them, never once per missed tick.
- Overlap policy ``forbid``: no fire starts while an earlier fire of the schedule still
  runs; the tick waits and fires (once) when that one has ended.
- Ticks at or before the moment a schedule was created, re-enabled or given a new cron
  (``armed_at_s``) never fire: enabling a schedule does not replay what it skipped.
- Nothing fires for a tick in the future.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from modelyard.core.errors import InvalidInput

__all__ = [
    "CRON_ALIASES",
    "MISSED_COUNT_LIMIT",
    "FirePlan",
    "ScheduleTiming",
    "check_cron",
    "check_executor",
    "check_schedule_name",
    "latest_tick",
    "next_tick",
    "plan_fires",
]

#: Aliases accepted besides five-field expressions (``@reboot`` is not: a server restart
#: is not a schedule).
CRON_ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
#: Missed ticks are counted up to this many (a year of ``* * * * *`` downtime would be
#: half a million); ``FirePlan.missed`` says "at least" beyond it.
MISSED_COUNT_LIMIT = 1000
MAX_CRON_LENGTH = 128
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_RAY_RE = re.compile(r"^ray://(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d+))?$")


def _at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def check_cron(expression: str) -> str:
    """A cron string, normalized (single spaces), or InvalidInput naming ``cron``.

    Five fields (minute hour day-of-month month day-of-week, evaluated in UTC) or one of
    :data:`CRON_ALIASES`; a string that never matches a date (``0 0 30 2 *``) is refused.

    Raises:
        InvalidInput: malformed, out of range, a seconds or years field, or never fires.
    """
    text = " ".join(expression.split())
    if not text:
        raise InvalidInput("cron: must not be empty (five fields, e.g. '*/5 * * * *')")
    if len(text) > MAX_CRON_LENGTH:
        raise InvalidInput(f"cron: at most {MAX_CRON_LENGTH} characters, got {len(text)}")
    if text.startswith("@"):
        if text.lower() not in CRON_ALIASES:
            aliases = ", ".join(sorted(CRON_ALIASES))
            raise InvalidInput(f"cron: unknown alias {text!r} (use one of {aliases})")
        text = text.lower()
    elif len(text.split(" ")) != 5:
        raise InvalidInput(
            f"cron: {text!r} has {len(text.split(' '))} fields; expected 5 "
            "(minute hour day-of-month month day-of-week, UTC)"
        )
    try:
        croniter(text, _at(0.0)).get_next(float)
    except CroniterBadDateError:
        raise InvalidInput(f"cron: {text!r} never matches a date") from None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
        raise InvalidInput(f"cron: {text!r} is invalid ({exc})") from None
    return text


def next_tick(cron: str, after_s: float) -> float:
    """The first tick of ``cron`` strictly after ``after_s`` (epoch seconds, UTC)."""
    return float(croniter(cron, _at(after_s)).get_next(float))


def latest_tick(cron: str, at_s: float) -> float:
    """The newest tick of ``cron`` at or before ``at_s``."""
    before = float(croniter(cron, _at(at_s)).get_prev(float))
    following = next_tick(cron, before)
    return following if following <= at_s else before


def check_executor(spec: str) -> str:
    """``local``, ``ray`` or ``ray://host[:port]``, or InvalidInput naming ``executor``."""
    if spec in ("local", "ray"):
        return spec
    match = _RAY_RE.match(spec)
    if match is not None:
        port = match.group("port")
        if port is None or 1 <= int(port) <= 65535:
            return spec
    raise InvalidInput(
        f"executor: unknown executor {spec!r}; expected local, ray or ray://host:port"
    )


def check_schedule_name(name: str) -> str:
    """A schedule name (it is a URL part), or InvalidInput naming ``name``."""
    if not _NAME_RE.match(name):
        raise InvalidInput(
            f"name: schedule name {name!r} is invalid: use 1-64 letters, digits and . _ -, "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class ScheduleTiming:
    """What :func:`plan_fires` needs of a schedule.

    Attributes:
        cron: a string :func:`check_cron` accepted.
        enabled: a disabled schedule never fires by its cron.
        armed_at_s: when it was created, last re-enabled or given a new cron; ticks at or
            before it never fire.
        running: a fire of it has not ended yet (overlap policy ``forbid``).
    """

    cron: str
    enabled: bool
    armed_at_s: float
    running: bool = False


@dataclass(frozen=True)
class FirePlan:
    """What a schedule should do now.

    Attributes:
        fire_at_s: the tick to fire for now (the newest due one, never after ``now``);
            None when nothing fires now.
        missed: due ticks older than ``fire_at_s`` that this one fire stands for (at
            least this many when it equals :data:`MISSED_COUNT_LIMIT`); while the
            previous fire runs, how many ticks wait for it besides the first.
        next_fire_s: when a fire is due next: the next tick after now, the oldest tick
            that waits for a running fire (in the past), or None when disabled.
        reason: why, in words (``due``, ``catch-up``, ``running``, ``not due``,
            ``disabled``).
    """

    fire_at_s: float | None
    missed: int
    next_fire_s: float | None
    reason: str


def plan_fires(schedule: ScheduleTiming, last_fire_s: float | None, now_s: float) -> FirePlan:
    """Which fire of ``schedule`` is due at ``now_s``.

    Args:
        schedule: the schedule's cron, state and arming time.
        last_fire_s: when its newest fire started (cron or fire-now); None if never.
        now_s: the time of the decision.

    Returns:
        At most one fire: the newest tick in ``(max(armed_at_s, last_fire_s), now_s]``,
        standing for every older tick of that window (see the module docstring).
    """
    if not schedule.enabled:
        return FirePlan(None, 0, None, "disabled")
    since = schedule.armed_at_s if last_fire_s is None else max(schedule.armed_at_s, last_fire_s)
    first = next_tick(schedule.cron, since)
    if first > now_s:
        return FirePlan(None, 0, first, "not due")
    if schedule.running:
        return FirePlan(None, _count(schedule.cron, first, now_s) - 1, first, "running")
    newest = latest_tick(schedule.cron, now_s)
    missed = _count(schedule.cron, first, newest) - 1
    reason = "catch-up" if missed else "due"
    return FirePlan(newest, missed, next_tick(schedule.cron, now_s), reason)


def _count(cron: str, first_s: float, last_s: float) -> int:
    """Ticks in ``[first_s, last_s]`` (``first_s`` a tick), at most MISSED_COUNT_LIMIT + 1."""
    it = croniter(cron, _at(first_s))
    count, tick = 1, first_s
    while count <= MISSED_COUNT_LIMIT:
        tick = float(it.get_next(float))
        if tick > last_s:
            break
        count += 1
    return count
