"""What one reconcile pass of one deployment collects while its parts run.

Replica checks, rollouts and scaling each add to it; the controller writes its events in
one go at the end of the pass, in the order they happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelyard.core.deployments import EventDraft


@dataclass
class Pass:
    """Events to record, and why revisions failed to load (by revision number)."""

    events: list[EventDraft] = field(default_factory=list)
    failed_revisions: dict[int, str] = field(default_factory=dict)
