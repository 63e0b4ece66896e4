"""modelyard's own autoscaler for deployments an orchestrator runs (``--autoscaler modelyard``).

The orchestrated controller (:mod:`modelyard.deploy._orchestrated`) keeps one
:class:`~modelyard.autoscale.AutoscaleController` per serving revision, with the policy
:func:`~modelyard.deploy._policy.deployment_policy` builds from the deployment's scaling
settings — the very objects the local controller (:mod:`modelyard.deploy._scaling`) and
the trace simulator run — and feeds it from consecutive
:attr:`~modelyard.deploy._backend.Observed.load` samples through
:func:`~modelyard.deploy.signals.observation`, exactly as the local controller feeds it
from gateway snapshots. Its count becomes the revision's
:attr:`~modelyard.deploy._backend.RevisionTarget.replicas`.

Two differences from local replicas:

- **Never zero.** The lower bound is ``max(min_replicas, 1)``
  (:func:`orchestrated_bounds`): on Ray the ingress forwards each request straight to the
  revision's Serve replicas, and nothing of modelyard holds a request while a replica
  starts (the local gateway does, and wakes the autoscaler), so a revision at zero could
  not be woken. Bounding the policy itself, not only its output, keeps it from asking
  for zero on every tick.
- **No signal, no decision.** When the backend reports no load (it could not read it,
  or, like Kubernetes, has none) the last count is held, and a ``scale`` event says so
  once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.autoscale import AutoscaleController, Observation
from modelyard.core.clock import Clock
from modelyard.core.deployments import Deployment, EventDraft, Replica, ScalingConfig
from modelyard.deploy._pass import Pass
from modelyard.deploy._policy import deployment_policy
from modelyard.deploy._scaling import held, scale_event
from modelyard.deploy.signals import RevisionCounters, observation


def orchestrated_bounds(config: ScalingConfig) -> ScalingConfig:
    """``config`` with ``min_replicas`` at least 1 (see the module docstring)."""
    if config.min_replicas >= 1:
        return config
    return dataclasses.replace(config, min_replicas=1)


def serving_revisions(dep: Deployment) -> list[int]:
    """The revisions modelyard's autoscaler scales: those that take traffic (a rollout's
    revision at 0 % keeps the target's bounds instead)."""
    return sorted(
        rev.number
        for rev in dep.revisions
        if rev.weight > 0 and rev.state not in ("failed", "retired")
    )


def replica_counts(records: Sequence[Replica], revision: int) -> tuple[int, int]:
    """``(current, ready)`` replicas of ``revision``: records starting or ready, and
    ready ones (what the policy is told it has)."""
    mine = [r for r in records if r.revision == revision and not r.standby]
    current = sum(1 for r in mine if r.state in ("starting", "ready"))
    return current, sum(1 for r in mine if r.state == "ready")


@dataclass
class _Scaler:
    """One serving revision's autoscaler and what it last saw and said."""

    controller: AutoscaleController[Any]
    fingerprint: str
    desired: int
    observation: Observation | None = None
    counters: RevisionCounters | None = None
    last_tick_s: float = -1e18
    said: int | None = None  # the count the last scale event announced
    holding: bool = False  # the last pass had no load signal (and said so)


class OrchestratedScalers:
    """Each serving revision's autoscaler on orchestrators; see the module docstring.

    Args:
        clock: the autoscalers' clock (``monotonic`` for ticks), the controller's own.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._scalers: dict[tuple[int, int], _Scaler] = {}

    def decide(
        self,
        dep: Deployment,
        records: Sequence[Replica] | None,
        load: Mapping[int, RevisionCounters] | None,
        p: Pass,
    ) -> dict[int, int]:
        """The replica count of each serving revision of ``dep``.

        Args:
            dep: the deployment (active; its scaling settings and revisions).
            records: its active replica records after this pass's observation, or None
                when the orchestrator could not be observed.
            load: :attr:`Observed.load` of this pass (None: no signal).
            p: collects the ``scale`` events.

        Each revision's policy ticks at most every ``tick_s``; between ticks, and while
        there is no signal, its last count holds.
        """
        config = orchestrated_bounds(dep.config)
        serving = serving_revisions(dep) if dep.status == "active" else []
        for key in [k for k in self._scalers if k[0] == dep.id and k[1] not in serving]:
            del self._scalers[key]
        counts: dict[int, int] = {}
        for n in serving:
            cur = load.get(n) if load is not None and records is not None else None
            counts[n] = self._scale(dep, n, config, records or (), cur, p)
        return counts

    def forget(self, deployment_id: int) -> None:
        """Drop a deployment's autoscalers (it is gone)."""
        for key in [k for k in self._scalers if k[0] == deployment_id]:
            del self._scalers[key]

    def _scale(
        self,
        dep: Deployment,
        n: int,
        config: ScalingConfig,
        records: Sequence[Replica],
        cur: RevisionCounters | None,
        p: Pass,
    ) -> int:
        key = (dep.id, n)
        fingerprint = config.to_json()
        current, ready = replica_counts(records, n)
        scaler = self._scalers.get(key)
        if scaler is None or scaler.fingerprint != fingerprint:
            said = scaler.said if scaler is not None else None
            scaler = self._scalers[key] = self._new(key, config, fingerprint, current)
            scaler.said = said
        if cur is None:
            scaler.desired = held(scaler.desired, config)
            if not scaler.holding:
                scaler.holding = True
                scaler.said = scaler.desired
                p.events.append(_holding_event(dep, n, scaler.desired, config))
            return scaler.desired
        scaler.holding = False
        now = self._clock.monotonic()
        if now - scaler.last_tick_s < scaler.controller.interval_s:
            return scaler.desired
        scaler.observation = observation(
            scaler.counters, cur, replicas=current, ready_replicas=ready
        )
        scaler.counters = cur
        scaler.last_tick_s = now
        event = scaler.controller.tick()
        scaler.desired = held(event.to_replicas, config)
        if scaler.desired != scaler.said:
            p.events.append(scale_event(event, n, woken=False))
            scaler.said = scaler.desired
        return scaler.desired

    def _new(
        self, key: tuple[int, int], config: ScalingConfig, fingerprint: str, current: int
    ) -> _Scaler:
        controller = AutoscaleController(
            deployment_policy(config),
            clock=self._clock,
            observe=lambda: self._observed(key),
            apply=lambda _n: None,
            keep_events=1,
        )
        return _Scaler(controller, fingerprint, desired=held(current, config))

    def _observed(self, key: tuple[int, int]) -> Observation:
        obs = self._scalers[key].observation
        if obs is None:  # tick() is only called after the observation is set
            raise RuntimeError("no observation")
        return obs


def _holding_event(dep: Deployment, revision: int, count: int, config: ScalingConfig) -> EventDraft:
    message = (
        f"holding {count} replica(s): {dep.backend.kind} reports no load signal to "
        "modelyard's autoscaler this time (the ingress could not be read, or nothing "
        "runs yet), so the last count stays"
    )
    data = {
        "desired": count,
        "min": config.min_replicas,
        "max": config.max_replicas,
        "signal": False,
    }
    return EventDraft("scale", message, revision, data)
