"""What the monitoring and cost pages show, computed from the services' records: drift
verdicts and their severity, alert states, chart specs, the cost period and budget state.
Pure functions: no I/O, no HTML (templates do the markup).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelyard.core.errors import InvalidInput
from modelyard.core.monitoring import AlertRuleRecord, DriftRecord
from modelyard.cost.budget import month_of
from modelyard.cost.service import duration_ms

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
#: Features charted on a deployment's monitoring page (a chart each): the rest are listed.
MAX_FEATURE_CHARTS = 60


def finite(value: Any) -> float | None:
    """A number JSON can hold, or None (NaN, infinities, non-numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def money(value: Any, currency: str, digits: int = 2) -> str:
    """``1,234.50 USD``; ``-`` for no amount."""
    number = finite(value)
    return "-" if number is None else f"{number:,.{digits}f} {currency}"


def percent(value: Any, digits: int = 1) -> str:
    number = finite(value)
    return "-" if number is None else f"{number:.{digits}f}%"


# ---- monitoring -------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureRow:
    """One feature of a drift result, as the drift table shows it."""

    name: str
    kind: str
    test: str
    score: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool
    tested: bool
    missing_current: float | None
    note: str

    @property
    def verdict(self) -> str:
        return "drifted" if self.drifted else ("ok" if self.tested else "not tested")

    @property
    def severity(self) -> float:
        """How far past (> 1) or short of (< 1) its threshold the score is; p-value
        tests drift when the p-value falls below the threshold, the others above it."""
        if not self.tested or self.score is None or not self.threshold:
            return -1.0
        if self.p_value is not None:
            return self.threshold / max(self.score, 1e-300)
        return self.score / self.threshold


def feature_rows(record: DriftRecord | None) -> list[FeatureRow]:
    """The features of a drift result, in the report's order (tolerating odd reports)."""
    if record is None:
        return []
    rows = []
    for f in record.report.get("features", []):
        if not isinstance(f, Mapping):
            continue
        rows.append(
            FeatureRow(
                name=str(f.get("column", "")),
                kind=str(f.get("kind", "")),
                test=str(f.get("test", "")),
                score=finite(f.get("statistic")),
                p_value=finite(f.get("p_value")),
                threshold=finite(f.get("threshold")),
                drifted=bool(f.get("drifted")),
                tested=bool(f.get("tested", True)),
                missing_current=finite(f.get("missing_share_current")),
                note=str(f.get("note") or ""),
            )
        )
    return rows


def worst_feature(record: DriftRecord | None) -> FeatureRow | None:
    """The drifted feature furthest past its threshold, else the closest to it."""
    rows = [r for r in feature_rows(record) if r.tested]
    return max(rows, key=lambda r: (r.drifted, r.severity), default=None)


def rule_status(rule: AlertRuleRecord) -> str:
    """``inactive``, ``pending`` or ``firing`` (``disabled`` for a disabled rule)."""
    if not rule.enabled:
        return "disabled"
    status = rule.state.get("status") if isinstance(rule.state, Mapping) else None
    return status if status in ("pending", "firing") else "inactive"


def rule_since(rule: AlertRuleRecord) -> float | None:
    """Since when the rule is in its state (epoch seconds), when it says."""
    key = {"firing": "fired_at_s", "pending": "active_since_s"}.get(rule_status(rule))
    return finite(rule.state.get(key)) if key else None


def drift_charts(history: Sequence[DriftRecord], features: Sequence[str]) -> dict[str, Any]:
    """Chart specs of a drift history: the drift share, and each feature's score."""
    times = [r.time_ms / 1000 for r in history]
    share = {
        "title": "Drift share",
        "x_label": "time",
        "time": True,
        "series": [
            {"label": "drift share", "x": times, "y": [finite(r.drift_share) for r in history]}
        ],
    }
    scores: dict[str, tuple[list[float], list[float | None]]] = {
        name: ([], []) for name in features[:MAX_FEATURE_CHARTS]
    }
    for record in history:
        for row in feature_rows(record):
            if row.name in scores:
                scores[row.name][0].append(record.time_ms / 1000)
                scores[row.name][1].append(row.score)
    per_feature = {
        name: {
            "title": "",
            "x_label": "time",
            "time": True,
            "series": [{"label": name, "x": xs, "y": ys}],
        }
        for name, (xs, ys) in scores.items()
    }
    return {"share": share, "features": per_feature}


def quality_chart(buckets: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A chart of accuracy/AUC or MAE/RMSE per bucket (None without buckets)."""
    keys = [k for k in ("accuracy", "auc", "mae", "rmse") if any(k in b for b in buckets)]
    if not buckets or not keys:
        return None
    xs = [int(b.get("start_ms", 0)) / 1000 for b in buckets]
    series = [{"label": k, "x": xs, "y": [finite(b.get(k)) for b in buckets]} for k in keys]
    return {"title": "Model quality", "x_label": "time", "time": True, "series": series}


# ---- cost -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A cost page's period: the service's ``since``/``until`` and how to name it."""

    text: str
    since: str
    until: str | None
    label: str


def cost_period(text: str | None, now_s: float) -> Period:
    """``period=``: empty or ``month`` (this month to date), a month ``2026-11``, or a
    duration back from now (``7d``, ``24h``, ``2w``).

    Raises:
        InvalidInput: anything else, or a month that has not begun.
    """
    value = (text or "").strip()
    if value in ("", "month"):
        month = month_of(now_s)
        start = datetime.fromtimestamp(month.start_s, UTC).strftime("%Y-%m-%d")
        return Period("month", start, None, f"this month ({month.key})")
    found = _MONTH.fullmatch(value)
    if found is not None:
        year, number = int(found.group(1)), int(found.group(2))
        if not (1970 <= year <= 9998 and 1 <= number <= 12):
            raise InvalidInput(f"period: {value!r} is not a month between 1970-01 and 9998-12")
        start_dt = datetime(year, number, 1, tzinfo=UTC)
        end_dt = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
        if start_dt.timestamp() >= now_s:
            raise InvalidInput(f"period: {value} has not begun yet")
        until = end_dt.strftime("%Y-%m-%d") if end_dt.timestamp() < now_s else None
        return Period(value, start_dt.strftime("%Y-%m-%d"), until, value)
    if duration_ms(value) is not None:
        return Period(value, value, None, f"the last {value}")
    raise InvalidInput(
        f"period: {value[:40]!r} is not 'month', a month like 2026-11 or a duration like "
        "7d, 24h or 2w"
    )


def spend_chart(over_time: Mapping[str, Any], title: str) -> dict[str, Any]:
    """The cost per bucket (``CostService.over_time``) as a chart spec."""
    buckets = over_time.get("buckets", [])
    days = over_time.get("days_per_bucket", 1)
    per = "day" if days == 1 else f"{days} days"
    return {
        "title": f"{title} per {per} ({over_time.get('currency', '')})",
        "x_label": "time",
        "time": True,
        "series": [
            {
                "label": "cost",
                "x": [b["start_ms"] / 1000 for b in buckets],
                "y": [finite(b["cost"]) for b in buckets],
            }
        ],
    }


def requests_chart(over_time: Mapping[str, Any]) -> dict[str, Any]:
    """The requests answered per bucket (``CostService.over_time``) as a chart spec."""
    buckets = over_time.get("buckets", [])
    return {
        "title": "Requests answered",
        "x_label": "time",
        "time": True,
        "series": [
            {
                "label": "requests",
                "x": [b["start_ms"] / 1000 for b in buckets],
                "y": [b["requests"] for b in buckets],
            }
        ],
    }


def budget_state(status: Mapping[str, Any]) -> tuple[str, str]:
    """A budget's state (from ``BudgetStatus.to_json``): (text, badge class)."""
    spent_pct = finite(status.get("percent")) or 0.0
    forecast_pct = finite(status.get("forecast_percent"))
    reached = [t["percent"] for t in status.get("thresholds", []) if t["percent"] <= spent_pct]
    if spent_pct >= 100:
        return "over budget", "bad"
    if forecast_pct is not None and forecast_pct >= 100:
        return "forecast over budget", "warn"
    if reached:
        return f"{max(reached):g}% reached", "warn"
    return "within budget", "good"


__all__ = [
    "MAX_FEATURE_CHARTS",
    "FeatureRow",
    "Period",
    "budget_state",
    "cost_period",
    "drift_charts",
    "feature_rows",
    "finite",
    "money",
    "percent",
    "quality_chart",
    "requests_chart",
    "rule_since",
    "rule_status",
    "spend_chart",
    "worst_feature",
]
