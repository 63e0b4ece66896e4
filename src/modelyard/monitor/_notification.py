"""An alert rule's transition as a notification for receivers.

The notification contract and its delivery live in :mod:`modelyard.notify`, shared with
budgets; this is the alert-specific part: which transitions are heard of, the summary
line and the stable id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from modelyard.core.errors import InvalidInput
from modelyard.monitor._alerting import Transition
from modelyard.monitor.rules import format_number
from modelyard.notify import Notification, notification_id


def alert_notification(
    transition: Transition,
    *,
    project: str,
    deployment: str,
    labels: Mapping[str, str] | None = None,
) -> Notification:
    """The notification of a firing or resolved :class:`Transition`.

    Raises:
        InvalidInput: the transition is not one receivers hear of (pending, inactive).
    """
    state = transition.to_state
    if state not in ("firing", "resolved"):
        raise InvalidInput(f"a transition to {state!r} is not notified")
    value = transition.value
    if value is not None and not math.isfinite(value):
        value = None
    shown = "no data" if value is None else format_number(value)
    summary = (
        f"[{state.upper()}] {project}/{deployment}: {transition.rule} "
        f"(value {shown}, threshold {format_number(transition.threshold)})"
    )
    return Notification(
        id=notification_id(project, deployment, transition.rule, state, transition.at_s),
        deployment=deployment,
        project=project,
        rule=transition.rule,
        state=state,
        value=value,
        threshold=transition.threshold,
        at=transition.at_s,
        summary=summary,
        labels=dict(labels or {}),
        since=transition.since_s,
    )
