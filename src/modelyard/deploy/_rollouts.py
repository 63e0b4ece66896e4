"""Revisions, rollouts and shadows as the controller applies them to the store.

The decisions are pure and live elsewhere: :func:`~modelyard.deploy._rollout.advance`
steps a rollout, :func:`~modelyard.deploy.signals.window_stats` turns the gateway's
counters into a step's window, :func:`shadow_event` summarizes a shadow's agreement. This
module feeds them what one pass saw and writes what they decide: a pending revision
becomes ready or failed (a failed one gives its traffic back), a rollout's new weights,
promotion and events, and every ``SHADOW_EVENT_S`` a ``shadow`` event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from modelyard.core.clock import Clock
from modelyard.core.deployments import Deployment, EventDraft, Replica
from modelyard.deploy._pass import Pass
from modelyard.deploy._rollout import RolloutView, advance
from modelyard.deploy.signals import GatewaySnapshot, RevisionCounters, window_stats
from modelyard.store import DeploymentChange, DeploymentRepository

SHADOW_EVENT_S = 10.0
SHADOW_COUNTERS = ("sent", "agreed", "disagreed", "failed", "dropped")


def revision_counters(
    dep: Deployment, snapshot: GatewaySnapshot | None
) -> dict[int, RevisionCounters]:
    """Each revision's gateway counters (zero for one the gateway has not seen); none
    without a snapshot."""
    if snapshot is None:
        return {}
    return {
        rev.number: snapshot.revisions.get(
            (dep.name, rev.number), RevisionCounters(now_s=snapshot.now_s)
        )
        for rev in dep.revisions
    }


def ready_replicas(replicas: list[Replica], revision: int) -> int:
    """Ready replicas of the revision that take traffic (standbys do not count)."""
    return sum(
        1 for r in replicas if r.revision == revision and r.state == "ready" and not r.standby
    )


def shadow_event(
    revision: int, current: Mapping[str, int], last: Mapping[str, int]
) -> EventDraft | None:
    """How often the shadow agreed with the primary since ``last``; None if no response
    was compared since."""
    compared = current.get("agreed", 0) + current.get("disagreed", 0)
    before = last.get("agreed", 0) + last.get("disagreed", 0)
    if compared == before:
        return None
    agreed = current.get("agreed", 0) - last.get("agreed", 0)
    n = compared - before
    rate = agreed / n if n > 0 else 0.0
    data: dict[str, float] = {k: current.get(k, 0) - last.get(k, 0) for k in SHADOW_COUNTERS}
    data["agreement_rate"] = round(rate, 4)
    message = f"shadow agreed with the primary on {rate:.1%} of {n} compared responses"
    return EventDraft("shadow", message, revision, data)


class Rollouts:
    """Revision states, rollout steps and shadow reports of every deployment.

    Args:
        repo: the deployments repository.
        clock: ``now`` for rollout steps, ``monotonic`` for the shadow report interval.
    """

    def __init__(self, repo: DeploymentRepository, clock: Clock) -> None:
        self._repo = repo
        self._clock = clock
        # The counters a rollout step's window started from, by (deployment, revision).
        self._windows: dict[tuple[int, int], RevisionCounters] = {}
        self._shadow_reported: dict[tuple[int, int], tuple[float, dict[str, int]]] = {}

    def revision_states(self, dep: Deployment, replicas: list[Replica], p: Pass) -> Deployment:
        """A pending revision with a ready replica is ready; one whose replica failed
        has failed, and if it took traffic outside a rollout the previous stable
        revision takes it back."""
        states: dict[int, tuple[str, str]] = {}
        for rev in dep.revisions:
            if rev.state != "pending":
                continue
            if any(r.revision == rev.number and r.state == "ready" for r in replicas):
                states[rev.number] = ("ready", "")
                message = f"revision {rev.number} is ready"
                p.events.append(EventDraft("revision", message, rev.number))
            elif rev.number in p.failed_revisions:
                error = p.failed_revisions[rev.number]
                states[rev.number] = ("failed", error)
                message = f"revision {rev.number} failed to load: {error}"
                p.events.append(EventDraft("revision", message, rev.number))
        if not states:
            return dep
        change = DeploymentChange(revision_states=states)
        failed = [n for n, (s, _) in states.items() if s == "failed"]
        if failed and dep.rollout is None and set(failed) & set(dep.weights):
            # A revision that never loaded keeps no traffic; the previous one takes it back.
            fallback = dep.previous_stable or next(
                (r.number for r in dep.revisions if r.state == "ready"), None
            )
            if fallback is not None:
                change.weights = {fallback: 100}
                change.stable_revision = fallback
        new, _ = self._repo.change(dep.id, change)
        return new

    def advance(
        self,
        dep: Deployment,
        replicas: list[Replica],
        counters: dict[int, RevisionCounters],
    ) -> tuple[Deployment, dict[int, int]]:
        """One step of the active rollout, written to the store; returns the deployment
        as it is now and the replica counts the rollout pins."""
        ro = dep.rollout
        if ro is None or not ro.active:
            return dep, {}
        target = dep.revision(ro.target)
        if target is None:
            return dep, {}
        view = RolloutView(
            now_ms=int(self._clock.now() * 1000),
            target_state=target.state,
            target_error=target.error,
            target_ready=ready_replicas(replicas, ro.target),
            stable_ready=ready_replicas(replicas, ro.stable),
            canary=window_stats(self._windows.get((dep.id, ro.target)), counters.get(ro.target)),
            stable=window_stats(self._windows.get((dep.id, ro.stable)), counters.get(ro.stable)),
        )
        step = advance(ro, view)
        if step.reset_window:
            for n in (ro.target, ro.stable):
                if n in counters:
                    self._windows[(dep.id, n)] = counters[n]
        if step.rollout == ro and step.weights is None and step.message is None:
            return dep, step.pins
        change = DeploymentChange(rollout=step.rollout, weights=step.weights)
        if step.promote:
            change.stable_revision = ro.target
            change.previous_stable = ro.stable
        if step.message is not None:
            data: dict[str, Any] = {
                "canary": asdict(view.canary),
                "stable": asdict(view.stable),
                "phase": step.rollout.phase,
                "weights": step.weights,
            }
            change.events = [EventDraft("rollout", step.message, ro.target, data)]
        new, _ = self._repo.change(dep.id, change)
        return new, step.pins

    def shadow_report(
        self, dep: Deployment, counters: dict[int, RevisionCounters], p: Pass
    ) -> None:
        """Every ``SHADOW_EVENT_S``: how often each shadow revision agreed with the primary."""
        for number in dep.shadows:
            cur = counters.get(number)
            if cur is None:
                continue
            key = (dep.id, number)
            last_t, last = self._shadow_reported.get(key, (-1e18, {}))
            if self._clock.monotonic() - last_t < SHADOW_EVENT_S:
                continue
            event = shadow_event(number, cur.shadow, last)
            if event is None:
                continue
            p.events.append(event)
            self._shadow_reported[key] = (self._clock.monotonic(), dict(cur.shadow))
