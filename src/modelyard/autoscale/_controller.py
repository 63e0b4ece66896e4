"""The live control loop around a policy, free of I/O: time, metrics and actions are injected."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic

from modelyard.autoscale._base import Observation, Policy, S, Sample, ScalingContext
from modelyard.core.clock import Clock


@dataclass(frozen=True, slots=True)
class ScalingEvent:
    """One decision of the controller, with its inputs and reason.

    Attributes:
        t_s: controller time of the decision (the clock's monotonic seconds).
        sample: what the policy saw.
        from_replicas: replicas before the decision.
        to_replicas: desired replicas after it (``== from_replicas`` if nothing changed).
        reason: the policy's explanation.
    """

    t_s: float
    sample: Sample
    from_replicas: int
    to_replicas: int
    reason: str

    @property
    def changed(self) -> bool:
        return self.to_replicas != self.from_replicas


class AutoscaleController(Generic[S]):
    """Owns a policy's state and the clock; samples, decides, applies, records.

    The caller drives it: call :meth:`tick` every :attr:`interval_s` seconds (a live
    deployment from its event loop, the simulator from its event queue). Each tick reads
    ``observe()``, stamps it with the clock, keeps the last ``policy.history_s`` seconds of
    samples, asks the policy, and calls ``apply(desired)`` when the desired count differs
    from the observed replicas. Not thread safe: one driver per controller.

    Args:
        policy: the (usually :class:`Bounded`) policy.
        clock: time source; ``clock.monotonic()`` stamps samples.
        observe: returns the current :class:`Observation` (counters since the last call).
        apply: scales the deployment to the given replica count.
        foresight: only for the simulator's oracle: ``(now_s, horizon_s) -> peak demand``.
        keep_events: how many recent events :attr:`events` keeps (``None``: all).
        on_event: called with every event (e.g. to log it or write the audit trail).
    """

    def __init__(
        self,
        policy: Policy[S],
        *,
        clock: Clock,
        observe: Callable[[], Observation],
        apply: Callable[[int], None],
        foresight: Callable[[float, float], int] | None = None,
        keep_events: int | None = 1000,
        on_event: Callable[[ScalingEvent], None] | None = None,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._observe = observe
        self._apply = apply
        self._foresight = foresight
        self._on_event = on_event
        self._state: S = policy.initial_state()
        self._history: deque[Sample] = deque()
        self._events: deque[ScalingEvent] = deque(maxlen=keep_events)
        self._last_t_s: float | None = None
        self._history_s = policy.history_s
        self._foresight_s = policy.foresight_s

    @property
    def policy(self) -> Policy[S]:
        return self._policy

    @property
    def interval_s(self) -> float:
        """How often :meth:`tick` should be called."""
        return self._policy.interval_s

    @property
    def state(self) -> S:
        """The policy state after the last decision."""
        return self._state

    @property
    def events(self) -> Sequence[ScalingEvent]:
        """The most recent decisions, oldest first."""
        return self._events

    def tick(self) -> ScalingEvent:
        """Observe, decide, apply if the count changes; return the recorded event."""
        now = self._clock.monotonic()
        obs = self._observe()
        dt = self._policy.interval_s if self._last_t_s is None else now - self._last_t_s
        self._last_t_s = now
        sample = Sample(now, dt, obs)
        history = self._history
        history.append(sample)
        horizon = now - self._history_s + 1e-9
        while len(history) > 1 and history[0].t_s <= horizon:
            history.popleft()
        peak = None
        if self._foresight is not None and self._foresight_s > 0:
            peak = self._foresight(now, self._foresight_s)
        ctx = ScalingContext(
            now_s=now,
            current_replicas=obs.replicas,
            ready_replicas=obs.ready_replicas,
            sample=sample,
            history=tuple(history),
            peak_demand_ahead=peak,
        )
        decision = self._policy.decide(ctx, self._state)
        self._state = decision.state
        event = ScalingEvent(now, sample, obs.replicas, decision.desired_replicas, decision.reason)
        self._events.append(event)
        if self._on_event is not None:
            self._on_event(event)
        if event.changed:
            self._apply(event.to_replicas)
        return event
