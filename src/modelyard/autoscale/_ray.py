"""Ray Serve's default autoscaling policy, simulated from its documented algorithm.

Replicas push their ongoing requests every ``metrics_interval_s`` (10 s); the controller
averages them over ``look_back_period_s`` (30 s) and asks for
``ceil(total_ongoing / target_ongoing_requests)`` replicas. A scale-up is applied after
30 s of consecutive scale-up decisions, a scale-down after 600 s (applied by
:class:`~modelyard.autoscale.Bounded`). ``min_replicas`` defaults to 1.
Source: docs.ray.io/en/latest/serve/advanced-guides/advanced-autoscaling.html.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.autoscale._base import Decision, ScalingContext, ceil_div, mean_concurrency, window
from modelyard.autoscale._bounds import Bounded


@dataclass(frozen=True)
class RayCore:
    """``ceil(average ongoing requests over the look-back / target)``."""

    target_ongoing_requests: float
    metrics_interval_s: float = 10.0
    look_back_period_s: float = 30.0
    name: str = "ray"

    @property
    def interval_s(self) -> float:
        return self.metrics_interval_s

    @property
    def history_s(self) -> float:
        return self.look_back_period_s

    @property
    def foresight_s(self) -> float:
        return 0.0

    def initial_state(self) -> None:
        return None

    def decide(self, ctx: ScalingContext, state: None) -> Decision[None]:
        ongoing = mean_concurrency(window(ctx.history, ctx.now_s, self.look_back_period_s))
        want = ceil_div(ongoing, self.target_ongoing_requests)
        return Decision(want, None, f"avg ongoing {ongoing:.2f} over look-back -> {want}")


def ray(target_ongoing_requests: float, *, max_replicas: int = 100) -> Bounded[None]:
    """Ray Serve with its defaults: min 1, upscale delay 30 s, downscale delay 600 s."""
    return Bounded(
        RayCore(target_ongoing_requests),
        min_replicas=1,
        max_replicas=max_replicas,
        upscale_delay_s=30.0,
        downscale_delay_s=600.0,
    )
