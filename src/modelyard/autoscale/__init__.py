"""Autoscaling: policies as pure functions, the live control loop, the trace-replay simulator.

The policy contract is in :mod:`modelyard.autoscale._base`; a deployment drives
:class:`AutoscaleController` with the same policies the simulator replays traces against.
"""

from __future__ import annotations

from modelyard.autoscale._base import (
    AnyPolicy,
    Decision,
    Observation,
    Policy,
    Sample,
    ScalingContext,
)
from modelyard.autoscale._bounds import Bounded, BoundedState
from modelyard.autoscale._controller import AutoscaleController, ScalingEvent
from modelyard.autoscale._default import DefaultCore, DefaultState, default_policy
from modelyard.autoscale._hpa import HpaCore, hpa
from modelyard.autoscale._kpa import KpaCore, KpaState, kpa
from modelyard.autoscale._oracle import FixedCore, OracleCore, fixed, oracle
from modelyard.autoscale._ray import RayCore, ray
from modelyard.autoscale.registry import POLICY_NAMES, PolicySettings, build_policy
from modelyard.autoscale.simulator import DemandForesight, SimConfig, SimResult, simulate
from modelyard.autoscale.traces import (
    ServiceTime,
    Trace,
    load_counts,
    load_timestamps,
    parse_service_time,
)

__all__ = [
    "POLICY_NAMES",
    "AnyPolicy",
    "AutoscaleController",
    "Bounded",
    "BoundedState",
    "Decision",
    "DefaultCore",
    "DefaultState",
    "DemandForesight",
    "FixedCore",
    "HpaCore",
    "KpaCore",
    "KpaState",
    "Observation",
    "OracleCore",
    "Policy",
    "PolicySettings",
    "RayCore",
    "Sample",
    "ScalingContext",
    "ScalingEvent",
    "ServiceTime",
    "SimConfig",
    "SimResult",
    "Trace",
    "build_policy",
    "default_policy",
    "fixed",
    "hpa",
    "kpa",
    "load_counts",
    "load_timestamps",
    "oracle",
    "parse_service_time",
    "ray",
    "simulate",
]
