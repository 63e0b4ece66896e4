"""How many replicas each revision gets, and starting or draining them to match.

:class:`Autoscalers` runs one :class:`~modelyard.autoscale.AutoscaleController` per
serving revision, with the policy :func:`~modelyard.deploy._policy.deployment_policy`
builds (the same policy code the trace simulator replays), fed with observations from the
gateway's counters; rollout pins and pending revisions override it. :class:`Capacity`
then starts or drains replicas towards those counts: ready standbys are promoted first,
new replicas are capped by the project's quota and the global replica limit, the least
busy replicas drain first, and a prewarmed standby is kept where asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.autoscale import AnyPolicy, AutoscaleController, Observation, ScalingEvent
from modelyard.core.clock import Clock
from modelyard.core.deployments import Deployment, EventDraft, Replica, Revision, ScalingConfig
from modelyard.cost.quota import ReplicaSize, cap_scale_up, quota_of, usage_of
from modelyard.deploy._health import ReplicaStates
from modelyard.deploy._pass import Pass
from modelyard.deploy._policy import deployment_policy
from modelyard.deploy.signals import GatewaySnapshot, RevisionCounters, observation
from modelyard.store import MetadataStore

# A revision's scale decision is recorded when it changes, and at least this often.
HEARTBEAT_EVENT_S = 60.0
# The global replica limit is reported at most this often per revision.
QUOTA_EVENT_S = 30.0


@dataclass
class _Scaler:
    """One serving revision's autoscaler and what it last saw and said."""

    controller: AutoscaleController[Any]
    fingerprint: str
    observation: Observation | None = None
    counters: RevisionCounters | None = None
    last_tick_s: float = -1e18
    desired: int = 0
    recorded_desired: int = -1
    recorded_at_s: float = -1e18


def held(desired: int, config: ScalingConfig) -> int:
    """The count kept while there are no gateway counters: the last one, within bounds."""
    return min(max(desired, config.min_replicas), config.max_replicas)


def scale_event(event: ScalingEvent, revision: int, woken: bool) -> EventDraft:
    """The ``scale`` event of one autoscaler decision, with what it observed."""
    obs = event.sample.obs
    data: dict[str, Any] = {
        "desired": event.to_replicas,
        "actual": event.from_replicas,
        "ready": obs.ready_replicas,
        "in_flight": obs.in_flight,
        "queued": obs.queued,
        "mean_concurrency": round(obs.mean_concurrency, 3),
        "arrivals": obs.arrivals,
        "window_s": round(event.sample.dt_s, 3),
        "woken": woken,
    }
    message = f"{event.from_replicas} -> {event.to_replicas}: {event.reason}"
    return EventDraft("scale", message, revision, data)


def keeps_standby(dep: Deployment, rev: Revision) -> bool:
    """Whether the revision keeps a prewarmed standby replica: it serves, and asked to."""
    return (
        dep.config.prewarm
        and dep.status == "active"
        and rev.state == "ready"
        and (rev.weight > 0 or rev.shadow_percent > 0)
    )


def drain_order(active: list[Replica], load: Mapping[str, int]) -> list[Replica]:
    """Which replicas to scale down first: starting ones (no request on them), then the
    least busy."""
    return sorted(active, key=lambda r: (r.state == "ready", load.get(r.id, 0)))


class Autoscalers:
    """Each serving revision's autoscaler, and the replica count of every revision.

    Args:
        clock: the autoscalers' clock (``monotonic`` for ticks and heartbeats).
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._scalers: dict[tuple[int, int], _Scaler] = {}

    def desired(
        self,
        dep: Deployment,
        replicas: list[Replica],
        counters: dict[int, RevisionCounters],
        pins: dict[int, int],
        wakes: set[tuple[str, int]],
        p: Pass,
    ) -> dict[int, int]:
        """Replicas per revision: none while deleting or failed, a rollout's pins, the
        autoscaler's count while serving, one to prove a pending revision loads."""
        if dep.status == "deleting":
            return {rev.number: 0 for rev in dep.revisions}
        desired: dict[int, int] = {}
        for rev in dep.revisions:
            serving = rev.weight > 0 or rev.shadow_percent > 0
            if rev.state == "failed":
                desired[rev.number] = 0
            elif rev.number in pins:
                desired[rev.number] = pins[rev.number]
            elif serving:
                woken = (dep.name, rev.number) in wakes
                n = self.scale(dep, rev, replicas, counters, woken, p)
                if rev.state == "pending":
                    # Keep the replica that proves the revision until the next decision.
                    n = self._scalers[(dep.id, rev.number)].desired = max(n, 1)
                desired[rev.number] = n
            elif rev.state == "pending":
                desired[rev.number] = 1  # start one replica to prove the revision loads
            else:
                desired[rev.number] = 0
            if not serving:
                self._scalers.pop((dep.id, rev.number), None)
        return desired

    def scale(
        self,
        dep: Deployment,
        rev: Revision,
        replicas: list[Replica],
        counters: dict[int, RevisionCounters],
        woken: bool,
        p: Pass,
    ) -> int:
        """The serving revision's autoscaler's count, ticked when due (or at once when the
        gateway woke it with no replica); a ``scale`` event when it changes."""
        key = (dep.id, rev.number)
        fingerprint = dep.config.to_json()
        scaler = self._scalers.get(key)
        mine = [r for r in replicas if r.revision == rev.number and not r.standby]
        current = sum(1 for r in mine if r.state in ("starting", "ready"))
        if scaler is None or scaler.fingerprint != fingerprint:
            scaler = self._scalers[key] = self._new_scaler(key, dep.config, fingerprint, current)
        now = self._clock.monotonic()
        cur = counters.get(rev.number)
        if cur is None:  # no gateway counters (it is down or restarting): hold, within bounds
            scaler.desired = held(scaler.desired, dep.config)
            return scaler.desired
        due = now - scaler.last_tick_s >= scaler.controller.interval_s
        if not (due or (woken and current == 0)):
            return scaler.desired
        ready = sum(1 for r in mine if r.state == "ready")
        scaler.observation = observation(
            scaler.counters, cur, replicas=current, ready_replicas=ready
        )
        scaler.counters = cur
        scaler.last_tick_s = now
        event = scaler.controller.tick()
        scaler.desired = event.to_replicas
        heartbeat = now - scaler.recorded_at_s >= HEARTBEAT_EVENT_S
        if event.changed or scaler.desired != scaler.recorded_desired or heartbeat:
            p.events.append(scale_event(event, rev.number, woken))
            scaler.recorded_desired = scaler.desired
            scaler.recorded_at_s = now
        return scaler.desired

    def forget(self, deployment_id: int) -> None:
        """Drop a purged deployment's autoscalers."""
        for key in [k for k in self._scalers if k[0] == deployment_id]:
            del self._scalers[key]

    def _new_scaler(
        self, key: tuple[int, int], config: ScalingConfig, fingerprint: str, current: int
    ) -> _Scaler:
        policy: AnyPolicy = deployment_policy(config)
        controller = AutoscaleController(
            policy,
            clock=self._clock,
            observe=lambda: self._observed(key),
            apply=lambda _n: None,
            keep_events=1,
        )
        return _Scaler(controller, fingerprint, desired=current)

    def _observed(self, key: tuple[int, int]) -> Observation:
        obs = self._scalers[key].observation
        if obs is None:  # tick() is only called after the observation is set
            raise RuntimeError("no observation")
        return obs


class Capacity:
    """Starts or drains each revision's replicas to match the desired counts.

    Args:
        store: the metadata store (project quotas and usage).
        replicas: launches, promotes, drains and stops replicas.
        clock: ``monotonic`` for how often the global limit is reported.
        max_total_replicas: the global cap on replicas (``MODELYARD_MAX_REPLICAS``).
    """

    def __init__(
        self,
        store: MetadataStore,
        replicas: ReplicaStates,
        clock: Clock,
        *,
        max_total_replicas: int,
    ) -> None:
        self._budgets = store.budgets
        self._replicas = replicas
        self._clock = clock
        self._max_total = max_total_replicas
        self._limit_reported_at: dict[tuple[int, int], float] = {}
        self._quota_capped: dict[tuple[int, int, bool], tuple[int, int, str | None]] = {}

    def apply(
        self,
        dep: Deployment,
        replicas: list[Replica],
        desired: dict[int, int],
        snapshot: GatewaySnapshot | None,
        p: Pass,
    ) -> None:
        for rev in dep.revisions:
            want = desired.get(rev.number, 0)
            up = [
                r
                for r in replicas
                if r.revision == rev.number
                and not self._replicas.is_stopping(r.id)
                and r.state in ("starting", "ready")
            ]
            active = [r for r in up if not r.standby]
            standby = [r for r in up if r.standby]
            if len(active) < want:
                self._scale_up(dep, rev, len(active), want, standby, p)
            elif len(active) > want:
                load = snapshot.replica_in_flight if snapshot is not None else {}
                for r in drain_order(active, load)[: len(active) - want]:
                    if r.state == "starting":
                        self._replicas.stop_async(r, "scaled down")
                    else:
                        self._replicas.drain(r, p)
            if not keeps_standby(dep, rev):
                for s in standby:
                    self._replicas.stop_async(s, "standby no longer needed")
            elif not standby and self._within_quota(dep, rev, 0, 1, p, standby=True):
                self._launch(dep, rev, standby=True, p=p)

    def _scale_up(
        self,
        dep: Deployment,
        rev: Revision,
        active: int,
        want: int,
        standby: list[Replica],
        p: Pass,
    ) -> None:
        """Promote ready standbys first (taken out of ``standby``), then start new
        replicas as far as the quota and the global limit allow."""
        missing = want - active
        for s in [s for s in standby if s.state == "ready"][:missing]:
            self._replicas.promote(s, p)
            standby.remove(s)
            missing -= 1
        for _ in range(self._within_quota(dep, rev, want - missing, want, p)):
            if not self._launch(dep, rev, standby=False, p=p):
                break

    def _within_quota(
        self,
        dep: Deployment,
        rev: Revision,
        current: int,
        want: int,
        p: Pass,
        *,
        standby: bool = False,
    ) -> int:
        """How many of ``want - current`` new replicas the project's quota lets start
        (:func:`cap_scale_up`); a ``quota`` event each time the cap changes."""
        key = (dep.id, rev.number, standby)
        record = self._budgets.quota(dep.project)
        if record is None:
            self._quota_capped.pop(key, None)
            return want - current
        cap = cap_scale_up(
            quota_of(record),
            usage_of(self._budgets.usage(dep.project)),
            ReplicaSize.of(rev.settings),
            current=current,
            desired=want,
        )
        if not cap.limited:
            self._quota_capped.pop(key, None)
            return want - current
        seen = (cap.wanted, cap.replicas, cap.limit)
        if self._quota_capped.get(key) != seen:
            self._quota_capped[key] = seen
            message = "standby not started: " + cap.message if standby else cap.message
            data = {
                "wanted": cap.wanted,
                "allowed": cap.replicas,
                "limit": cap.limit,
                "standby": standby,
            }
            p.events.append(EventDraft("quota", message, rev.number, data))
        return cap.replicas - current

    def _launch(self, dep: Deployment, rev: Revision, *, standby: bool, p: Pass) -> bool:
        """Start one replica unless the global limit is reached (said every
        ``QUOTA_EVENT_S``)."""
        if self._replicas.active_count() >= self._max_total:
            key = (dep.id, rev.number)
            now = self._clock.monotonic()
            if now - self._limit_reported_at.get(key, -1e18) >= QUOTA_EVENT_S:
                self._limit_reported_at[key] = now
                message = (
                    f"global replica limit {self._max_total} reached "
                    "(MODELYARD_MAX_REPLICAS); not starting another"
                )
                p.events.append(EventDraft("quota", message, rev.number))
            return False
        return self._replicas.launch(dep, rev, standby=standby, p=p)
