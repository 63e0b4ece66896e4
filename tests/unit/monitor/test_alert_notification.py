"""An alert rule's firing or resolved transition as the notification receivers get."""

from __future__ import annotations

import json

import pytest

from modelyard.core.errors import InvalidInput
from modelyard.monitor._alerting import replay
from modelyard.monitor._notification import alert_notification
from modelyard.monitor.rules import parse_rule
from modelyard.notify import Notification, notification_id

AT = 1_700_000_120.0


def transition_notification(state: str = "firing") -> Notification:
    rule = parse_rule("p99_ms > 50 for 2m")
    samples: list[tuple[float, float | None]] = [(AT - 120, 60.0), (AT, 61.5)]
    if state == "resolved":
        samples = [(AT - 240, 60.0), (AT - 120, 60.0), (AT, 1.0)]
    _, transitions = replay(rule, samples)
    return alert_notification(
        transitions[-1], project="churn", deployment="churn-api", labels={"team": "ml", "a": "1"}
    )


def test_alert_notification_from_transition() -> None:
    n = transition_notification()
    assert n.event == "alert"
    assert n.state == "firing"
    assert n.rule == "p99_ms > 50 for 2m"
    assert (n.value, n.threshold, n.at, n.since) == (61.5, 50.0, AT, 1_700_000_000.0)
    assert n.summary == "[FIRING] churn/churn-api: p99_ms > 50 for 2m (value 61.5, threshold 50)"
    assert list(n.labels) == ["a", "team"]
    assert n.id == transition_notification().id  # stable
    assert n.id == notification_id("churn", "churn-api", n.rule, "firing", n.at)
    data = json.loads(n.body())
    assert (data["event"], data["deployment"], data["state"]) == ("alert", "churn-api", "firing")


def test_resolved_alert_notification() -> None:
    n = transition_notification("resolved")
    assert (n.state, n.value, n.since) == ("resolved", 1.0, 1_700_000_000.0)
    assert n.summary == "[RESOLVED] churn/churn-api: p99_ms > 50 for 2m (value 1, threshold 50)"
    assert n.id != transition_notification().id


def test_only_firing_and_resolved_are_notified() -> None:
    _, transitions = replay(parse_rule("rps > 1 for 1m"), [(0, 2.0)])
    with pytest.raises(InvalidInput, match="not notified"):
        alert_notification(transitions[0], project="p", deployment="d")
