"""Kubernetes HorizontalPodAutoscaler, simulated from its documented algorithm.

``desired = ceil(current * metric / target)`` on a per-pod concurrency metric, skipped
within a tolerance of 10 %, evaluated every 15 s (``--horizontal-pod-autoscaler-sync-period``),
scale-up limited by the default behavior (the larger of +100 % or +4 pods per 15 s).
The 300 s scale-down stabilization window and ``minReplicas: 1`` are applied by
:class:`~modelyard.autoscale.Bounded` (see :func:`hpa`).
Source: kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.autoscale._base import Decision, ScalingContext, ceil_div, mean_concurrency, window
from modelyard.autoscale._bounds import Bounded


@dataclass(frozen=True)
class HpaCore:
    """The HPA replica calculation on the concurrency metric (no bounds, no stabilization).

    Args:
        target_concurrency: target average in-flight-plus-queued requests per pod.
        tolerance: relative metric deviation that is ignored.
        sync_period_s: how often the HPA controller evaluates.
    """

    target_concurrency: float
    tolerance: float = 0.1
    sync_period_s: float = 15.0
    name: str = "hpa"

    @property
    def interval_s(self) -> float:
        return self.sync_period_s

    @property
    def history_s(self) -> float:
        return self.sync_period_s

    @property
    def foresight_s(self) -> float:
        return 0.0

    def initial_state(self) -> None:
        return None

    def decide(self, ctx: ScalingContext, state: None) -> Decision[None]:
        cur, ready = ctx.current_replicas, ctx.ready_replicas
        metric_total = mean_concurrency(window(ctx.history, ctx.now_s, self.sync_period_s))
        if ready == 0:
            # No pod reports metrics yet: HPA keeps the scale (from zero: one pod if loaded).
            want = cur if cur > 0 else (1 if ctx.sample.obs.load > 0 else 0)
            return Decision(want, None, "no ready pods, hold")
        ratio = metric_total / (ready * self.target_concurrency)
        if abs(ratio - 1.0) <= self.tolerance:
            return Decision(cur, None, f"usage ratio {ratio:.2f} within tolerance")
        want = max(ceil_div(metric_total, self.target_concurrency), 0)
        limit = max(2 * cur, cur + 4)
        if want > limit:
            return Decision(limit, None, f"usage ratio {ratio:.2f}, scale-up limited to {limit}")
        return Decision(want, None, f"usage ratio {ratio:.2f} -> {want}")


def hpa(target_concurrency: float, *, max_replicas: int = 100) -> Bounded[None]:
    """HPA with its defaults: minReplicas 1, scale-down stabilization 300 s, scale-up 0 s."""
    return Bounded(
        HpaCore(target_concurrency),
        min_replicas=1,
        max_replicas=max_replicas,
        downscale_stabilization_s=300.0,
    )
