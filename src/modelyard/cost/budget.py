"""Budget evaluation: spend month to date, a linear forecast and threshold crossings.

Pure functions with the time passed in; nothing here reads a clock or does I/O, so the
budget loop, ``budget show`` and the Hypothesis tests all decide the same way.

- A budget is an amount per calendar month in UTC, in the price catalog's currency,
  with thresholds in percent of it (``50, 80, 100``).
- The forecast is linear on the month to date: ``spent / elapsed * month_length``. It is
  None during the month's first :data:`MIN_FORECAST_ELAPSED_S` (one day): a few
  minutes of spend say little about a month, and extrapolating them would make the
  forecast (and its alerts) jump around at every month's start.
- A threshold is crossed ``actual`` when the spend reaches it, and ``forecast`` when the
  forecast does; forecast crossings are only evaluated for thresholds of at least
  :data:`FORECAST_MIN_PERCENT` (100 %: "on track to exceed the budget"), because a
  forecast at 50 % of the budget is the normal state of a budget that fits.
- Each (threshold, kind) is crossed at most once per month and budget amount: the state
  remembers what was crossed; a new month, or a new amount, starts a fresh set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeAlias

from modelyard.core.errors import InvalidInput

__all__ = [
    "FORECAST_MIN_PERCENT",
    "MAX_THRESHOLD_PERCENT",
    "MIN_FORECAST_ELAPSED_S",
    "BudgetState",
    "Crossing",
    "CrossingKind",
    "Evaluation",
    "Month",
    "check_amount",
    "check_thresholds",
    "evaluate",
    "forecast",
    "month_of",
    "threshold_amount",
]

CrossingKind: TypeAlias = Literal["actual", "forecast"]

#: No forecast before this much of the month has passed (seconds).
MIN_FORECAST_ELAPSED_S: Final = 86400.0
#: Forecast crossings are evaluated only for thresholds at or above this percentage.
FORECAST_MIN_PERCENT: Final = 100.0
#: The highest threshold a budget may have, in percent.
MAX_THRESHOLD_PERCENT: Final = 1000.0
#: The most thresholds one budget may have.
MAX_THRESHOLDS: Final = 20


@dataclass(frozen=True)
class Month:
    """A calendar month in UTC.

    Attributes:
        key: ``YYYY-MM``.
        start_s: its first instant, epoch seconds.
        end_s: the first instant of the next month, epoch seconds.
    """

    key: str
    start_s: float
    end_s: float

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s


def month_of(now_s: float) -> Month:
    """The UTC calendar month holding ``now_s``.

    Raises:
        InvalidInput: ``now_s`` is not a finite time.
    """
    if not math.isfinite(now_s):
        raise InvalidInput(f"time must be finite, got {now_s!r}")
    at = datetime.fromtimestamp(now_s, tz=UTC)
    start = datetime(at.year, at.month, 1, tzinfo=UTC)
    end = datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)
    return Month(f"{at.year:04d}-{at.month:02d}", start.timestamp(), end.timestamp())


def forecast(spent: float, now_s: float, month: Month) -> float | None:
    """The month's spend if it goes on as it went so far (None in the first day)."""
    elapsed = now_s - month.start_s
    if elapsed < MIN_FORECAST_ELAPSED_S:
        return None
    return spent * month.length_s / min(elapsed, month.length_s)


def threshold_amount(amount: float, percent: float) -> float:
    """The spend at which ``percent`` of ``amount`` is reached (the one formula used)."""
    return amount * percent / 100.0


def check_amount(amount: float) -> float:
    """A budget amount: a finite number > 0.

    Raises:
        InvalidInput: naming the amount.
    """
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise InvalidInput(f"monthly amount must be a number, got {amount!r}")
    if not (math.isfinite(amount) and amount > 0):
        raise InvalidInput(f"monthly amount must be a finite number > 0, got {amount!r}")
    return float(amount)


def check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    """Thresholds in percent: at least one, each in (0, 1000], strictly increasing.

    Raises:
        InvalidInput: naming the offending value.
    """
    if not thresholds:
        raise InvalidInput("alert_at: give at least one threshold in percent, e.g. 50,80,100")
    if len(thresholds) > MAX_THRESHOLDS:
        raise InvalidInput(f"alert_at: at most {MAX_THRESHOLDS} thresholds, got {len(thresholds)}")
    out: list[float] = []
    for value in thresholds:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"alert_at: {value!r} is not a number")
        if not (math.isfinite(value) and 0 < value <= MAX_THRESHOLD_PERCENT):
            raise InvalidInput(
                f"alert_at: {value!r} must be a percentage in (0, {MAX_THRESHOLD_PERCENT:g}]"
            )
        if out and value <= out[-1]:
            raise InvalidInput(
                f"alert_at: thresholds must increase without repeats, got {list(thresholds)}"
            )
        out.append(float(value))
    return tuple(out)


@dataclass(frozen=True)
class Crossing:
    """One threshold reached in one month.

    Attributes:
        threshold: the threshold, percent of the budget.
        kind: ``actual`` (the spend reached it) or ``forecast`` (the forecast did).
        at_s: when it was seen.
        spent: the spend month to date then.
        forecast: the forecast then (None in the month's first day).
    """

    threshold: float
    kind: CrossingKind
    at_s: float
    spent: float
    forecast: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "kind": self.kind,
            "at_s": self.at_s,
            "spent": self.spent,
            "forecast": self.forecast,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Crossing:
        kind = data["kind"]
        if kind not in ("actual", "forecast"):
            raise ValueError(f"unknown crossing kind {kind!r}")
        fc = data.get("forecast")
        return cls(
            float(data["threshold"]),
            kind,
            float(data["at_s"]),
            float(data["spent"]),
            None if fc is None else float(fc),
        )


@dataclass(frozen=True)
class BudgetState:
    """What a budget's evaluation remembers between passes.

    Attributes:
        month: the month (``YYYY-MM``) the crossings belong to; empty before the first.
        amount: the budget amount they were measured against.
        crossed: the crossings seen this month, oldest first.
    """

    month: str = ""
    amount: float = 0.0
    crossed: tuple[Crossing, ...] = ()

    def has(self, threshold: float, kind: CrossingKind) -> bool:
        return any(c.threshold == threshold and c.kind == kind for c in self.crossed)

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "amount": self.amount,
            "crossed": [c.to_json() for c in self.crossed],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BudgetState:
        """The state stored by :meth:`to_json`; an empty or unreadable one is fresh."""
        if not data:
            return cls()
        try:
            return cls(
                str(data.get("month", "")),
                float(data.get("amount", 0.0)),
                tuple(Crossing.from_json(c) for c in data.get("crossed", [])),
            )
        except (KeyError, TypeError, ValueError):
            return cls()


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one evaluation.

    Attributes:
        month: the month evaluated.
        spent: spend month to date.
        forecast: the linear forecast for the whole month (None in its first day).
        percent: ``spent`` in percent of the budget.
        forecast_percent: ``forecast`` in percent of the budget.
        state: the state to store.
        crossings: what was crossed in this evaluation (and not before this month),
            thresholds in increasing order, ``actual`` before ``forecast``.
        reset: the stored state was of another month or amount, and was reset.
    """

    month: Month
    spent: float
    forecast: float | None
    percent: float
    forecast_percent: float | None
    state: BudgetState
    crossings: tuple[Crossing, ...]
    reset: bool


def evaluate(
    amount: float,
    thresholds: Sequence[float],
    spent: float,
    now_s: float,
    state: BudgetState,
) -> Evaluation:
    """Evaluate a budget of ``amount`` per month at ``now_s`` with ``spent`` so far.

    Deterministic and idempotent: the same inputs give the same result, and evaluating
    again with the returned state crosses nothing new.

    Raises:
        InvalidInput: a bad amount or thresholds, or a spend that is negative or not
            finite.
    """
    amount = check_amount(amount)
    levels = check_thresholds(thresholds)
    if isinstance(spent, bool) or not (math.isfinite(spent) and spent >= 0):
        raise InvalidInput(f"spend must be a finite number >= 0, got {spent!r}")
    month = month_of(now_s)
    expected = forecast(spent, now_s, month)
    fresh = state.month != month.key or state.amount != amount
    current = BudgetState(month.key, amount) if fresh else state
    new: list[Crossing] = []
    for level in levels:
        line = threshold_amount(amount, level)
        if spent >= line and not current.has(level, "actual"):
            new.append(Crossing(level, "actual", now_s, spent, expected))
        if (
            level >= FORECAST_MIN_PERCENT
            and expected is not None
            and expected >= line
            and not current.has(level, "forecast")
        ):
            new.append(Crossing(level, "forecast", now_s, spent, expected))
    if new:
        current = replace(current, crossed=current.crossed + tuple(new))
    return Evaluation(
        month=month,
        spent=spent,
        forecast=expected,
        percent=100.0 * spent / amount,
        forecast_percent=None if expected is None else 100.0 * expected / amount,
        state=current,
        crossings=tuple(new),
        reset=fresh and bool(state.month),
    )
