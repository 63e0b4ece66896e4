"""A deployment's scaling config → the autoscaling policy its controller runs.

The live controller and the trace simulator build policies from the same classes in
:mod:`modelyard.autoscale`; only the parameters come from the deployment here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from modelyard.autoscale import AnyPolicy, Bounded, KpaCore, PolicySettings, build_policy
from modelyard.core.deployments import ScalingConfig

# A fork-launched replica of a small model is ready in well under a second.
LIVE_COLD_START_S = 1.0


def deployment_policy(config: ScalingConfig) -> AnyPolicy:
    """The policy for one serving revision, with the deployment's bounds and grace period.

    ``kpa`` (the default) is Knative's algorithm with every knob taken from ``config``;
    any other name (``default``, ``hpa``, ``ray``, ``fixed:N``) is built by
    :func:`modelyard.autoscale.build_policy` and re-bounded to ``config``.
    """
    bounds: dict[str, Any] = {
        "min_replicas": config.min_replicas,
        "max_replicas": config.max_replicas,
        "scale_to_zero_grace_s": config.idle_grace_s,
        "idle_to_zero_s": config.idle_grace_s,
    }
    if config.policy.strip().lower() == "kpa":
        core = KpaCore(
            config.target_concurrency,
            target_utilization=config.target_utilization,
            stable_window_s=config.stable_window_s,
            panic_window_pct=100.0 * config.panic_window_s / config.stable_window_s,
            panic_threshold_pct=100.0 * config.panic_threshold,
            max_scale_down_rate=config.max_scale_down_rate,
            tick_s=config.tick_s,
        )
        return Bounded(core, **bounds)
    built = build_policy(
        config.policy,
        PolicySettings(
            target_concurrency=config.target_concurrency,
            slo_s=config.slo_ms / 1000.0,
            slo_includes_service=True,
            cold_start_s=LIVE_COLD_START_S,
            max_replicas=config.max_replicas,
        ),
    )
    if isinstance(built, Bounded):
        return dataclasses.replace(built, **bounds)
    return Bounded(built, **bounds)
