"""Bounds, delays, stabilization and scale-to-zero: one wrapper around any policy."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Generic

from modelyard.autoscale._base import Decision, Policy, S, ScalingContext
from modelyard.core.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class BoundedState(Generic[S]):
    """The wrapper's own state next to the wrapped policy's."""

    inner: S
    # (t_s, recommendation) of the last ``downscale_stabilization_s`` seconds.
    recommendations: tuple[tuple[float, int], ...] = ()
    # Direction (+1/-1) the inner policy has asked for without a break, and since when.
    pending_direction: int = 0
    pending_since_s: float = 0.0
    # Since when the inner policy has wanted zero replicas with no load (None: it has not).
    zero_since_s: float | None = None
    # When a request last arrived or was in the system (None: never).
    busy_at_s: float | None = None


@dataclass(frozen=True)
class Bounded(Generic[S]):
    """Wrap ``inner`` with the rules every deployment needs, whatever the policy.

    Applied in this order to the inner policy's recommendation:

    1. ``downscale_stabilization_s`` (Kubernetes HPA): scale down only to the highest
       recommendation of that window.
    2. ``upscale_delay_s`` / ``downscale_delay_s`` (Ray Serve): a change is applied only
       after the inner policy has asked for it in every decision for that long.
    3. ``scale_to_zero_grace_s`` (Knative): the last replica goes only after the inner
       policy has wanted zero, with nothing queued or in flight, for that long.
       ``idle_to_zero_s`` (a deployment's ``--idle-grace-s``): after that long without a
       request arriving or in the system, zero replicas whatever the inner policy's
       averages still say.
    4. Safety: never zero replicas while requests are queued or in flight, and a
       deployment at zero with a request waiting gets a replica at once, bypassing delays.
    5. ``min_replicas <= desired <= max_replicas``.

    Args:
        inner: the policy to wrap.
        min_replicas: lower bound; 0 allows scale-to-zero.
        max_replicas: upper bound, at least 1.
        downscale_stabilization_s: HPA-style stabilization window for scale-down.
        upscale_delay_s: Ray-style delay before scaling up.
        downscale_delay_s: Ray-style delay before scaling down.
        scale_to_zero_grace_s: Knative-style grace before the last replica goes.
        idle_to_zero_s: scale to zero after this long with no traffic (0: off).

    Raises:
        InvalidInput: bounds out of order or negative delays.
    """

    inner: Policy[S]
    min_replicas: int = 0
    max_replicas: int = 100
    downscale_stabilization_s: float = 0.0
    upscale_delay_s: float = 0.0
    downscale_delay_s: float = 0.0
    scale_to_zero_grace_s: float = 0.0
    idle_to_zero_s: float = 0.0
    _label: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.min_replicas < 0:
            raise InvalidInput(f"min_replicas must be >= 0, got {self.min_replicas}")
        if self.max_replicas < max(1, self.min_replicas):
            raise InvalidInput(
                f"max_replicas must be >= max(1, min_replicas={self.min_replicas}), "
                f"got {self.max_replicas}"
            )
        for name in (
            "downscale_stabilization_s",
            "upscale_delay_s",
            "downscale_delay_s",
            "scale_to_zero_grace_s",
            "idle_to_zero_s",
        ):
            if getattr(self, name) < 0:
                raise InvalidInput(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def name(self) -> str:
        return self._label or self.inner.name

    @property
    def interval_s(self) -> float:
        return self.inner.interval_s

    @property
    def history_s(self) -> float:
        return self.inner.history_s

    @property
    def foresight_s(self) -> float:
        return self.inner.foresight_s

    def initial_state(self) -> BoundedState[S]:
        return BoundedState(inner=self.inner.initial_state())

    def decide(self, ctx: ScalingContext, state: BoundedState[S]) -> Decision[BoundedState[S]]:
        inner = self.inner.decide(ctx, state.inner)
        want, reason = inner.desired_replicas, inner.reason
        now, cur = ctx.now_s, ctx.current_replicas
        load = ctx.sample.obs.load

        recs = state.recommendations
        if self.downscale_stabilization_s > 0:
            horizon = now - self.downscale_stabilization_s
            recs = (*(r for r in recs if r[0] > horizon), (now, want))
            ceiling = max(r for _, r in recs)
            if want < cur and ceiling > want:
                want, reason = min(cur, ceiling), f"{reason}; stabilized at {min(cur, ceiling)}"

        direction = (want > cur) - (want < cur)
        since = state.pending_since_s if direction == state.pending_direction else now
        delay = self.upscale_delay_s if direction > 0 else self.downscale_delay_s
        if direction != 0 and now - since < delay:
            want, reason = cur, f"{reason}; held {now - since:.0f}/{delay:.0f}s"

        zero_since = state.zero_since_s
        if inner.desired_replicas == 0 and load == 0:
            zero_since = now if zero_since is None else zero_since
        else:
            zero_since = None
        if want == 0 and cur > 0 and self.scale_to_zero_grace_s > 0:
            idle_s = now - zero_since if zero_since is not None else 0.0
            if idle_s < self.scale_to_zero_grace_s:
                want, reason = 1, f"{reason}; scale-to-zero grace {idle_s:.0f}s"

        busy_at = state.busy_at_s
        if load > 0 or ctx.sample.obs.arrivals > 0:
            busy_at = now
        if self.idle_to_zero_s > 0 and load == 0:
            idle_s = now - busy_at if busy_at is not None else math.inf
            if idle_s >= self.idle_to_zero_s and want > 0:
                quiet = "no traffic yet" if busy_at is None else f"no traffic for {idle_s:.0f}s"
                want, reason = 0, f"{quiet}: scale to zero"

        if want == 0 and load > 0:
            want, reason = 1, f"{reason}; {load} request(s) waiting, keep one replica"
        bounded = min(max(want, self.min_replicas), self.max_replicas)
        if bounded != want:
            reason = f"{reason}; bounded to [{self.min_replicas}, {self.max_replicas}]"
        new_state = BoundedState(
            inner=inner.state,
            recommendations=recs,
            pending_direction=direction,
            pending_since_s=since,
            zero_since_s=zero_since,
            busy_at_s=busy_at,
        )
        return Decision(bounded, new_state, reason)
