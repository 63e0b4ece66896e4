"""Knative Pod Autoscaler (KPA), simulated from its documented algorithm and defaults.

Average concurrency over a 60 s stable window and a 6 s panic window, a per-pod target of
``target_concurrency * 0.7`` (target utilization 70 %), panic mode when the panic-window
demand reaches 200 % of the ready pods (then never scale down until 60 s after the last
over-threshold tick), scale-up rate at most 1000x and scale-down at most /2 per 2 s tick.
The 30 s scale-to-zero grace period is applied by :class:`~modelyard.autoscale.Bounded`.
Source: knative.dev/docs/serving/autoscaling/ and pkg/autoscaler/scaling/autoscaler.go.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelyard.autoscale._base import Decision, ScalingContext, ceil_div, mean_concurrency, window
from modelyard.autoscale._bounds import Bounded


@dataclass(frozen=True, slots=True)
class KpaState:
    """When panic mode last saw the panic threshold crossed, and its high-water mark."""

    panic_time_s: float | None = None
    max_panic_pods: int = 0


@dataclass(frozen=True)
class KpaCore:
    """The KPA decision (without the scale-to-zero grace period)."""

    target_concurrency: float
    target_utilization: float = 0.7
    stable_window_s: float = 60.0
    panic_window_pct: float = 10.0
    panic_threshold_pct: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    tick_s: float = 2.0
    name: str = "kpa"

    @property
    def interval_s(self) -> float:
        return self.tick_s

    @property
    def history_s(self) -> float:
        return self.stable_window_s

    @property
    def foresight_s(self) -> float:
        return 0.0

    def initial_state(self) -> KpaState:
        return KpaState()

    def decide(self, ctx: ScalingContext, state: KpaState) -> Decision[KpaState]:
        now = ctx.now_s
        spot_target = self.target_concurrency * self.target_utilization
        stable = mean_concurrency(window(ctx.history, now, self.stable_window_s))
        panic_window_s = self.stable_window_s * self.panic_window_pct / 100.0
        panic = mean_concurrency(window(ctx.history, now, panic_window_s))
        ready = max(1, ctx.ready_replicas)
        max_up = math.ceil(self.max_scale_up_rate * ready)
        max_down = math.floor(ready / self.max_scale_down_rate)
        stable_pods = min(max(ceil_div(stable, spot_target), max_down), max_up)
        panic_pods = min(max(ceil_div(panic, spot_target), max_down), max_up)
        over = panic_pods / ready >= self.panic_threshold_pct / 100.0

        panic_time = state.panic_time_s
        if over:
            panic_time = now
        elif panic_time is not None and now > panic_time + self.stable_window_s:
            panic_time = None
        if panic_time is None:
            return Decision(
                stable_pods, KpaState(), f"stable avg {stable:.2f} -> {stable_pods} pods"
            )
        want = max(panic_pods, state.max_panic_pods, ctx.current_replicas)
        return Decision(
            want,
            KpaState(panic_time, want),
            f"panic: panic avg {panic:.2f} -> {panic_pods} pods, holding {want}",
        )


def kpa(target_concurrency: float, *, max_replicas: int = 100) -> Bounded[KpaState]:
    """KPA with Knative's defaults: min 0, scale-to-zero grace 30 s."""
    return Bounded(
        KpaCore(target_concurrency),
        min_replicas=0,
        max_replicas=max_replicas,
        scale_to_zero_grace_s=30.0,
    )
