"""The live controller and the simulator make the same decisions from the same load."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.autoscale import (
    AutoscaleController,
    DemandForesight,
    Observation,
    PolicySettings,
    ScalingEvent,
    SimConfig,
    build_policy,
    fixed,
    simulate,
)
from modelyard.core.clock import FakeClock

SETTINGS = PolicySettings(
    target_concurrency=2, slo_s=0.3, slo_includes_service=True, cold_start_s=2.0
)


def recorded_load() -> tuple[np.ndarray, np.ndarray]:
    """A short load with a quiet start, a burst, a lull and a second burst."""
    rng = np.random.default_rng(7)
    pieces = [
        np.sort(rng.uniform(0, 30, 20)),
        np.sort(rng.uniform(30, 45, 400)),
        np.sort(rng.uniform(120, 130, 250)),
    ]
    arrivals = np.concatenate(pieces)
    return arrivals, np.full(arrivals.size, 0.08)


@pytest.mark.parametrize("name", ["default", "hpa", "kpa", "ray", "oracle"])
def test_replaying_the_recorded_load_gives_the_same_decisions(name: str) -> None:
    arrivals, service = recorded_load()
    config = SimConfig(2, 2.0, keep_decisions=True, foresight_smoothing_s=0.2)
    sim = simulate(build_policy(name, SETTINGS), arrivals, service, config)
    assert sim.decisions, "the simulator records every decision when asked"
    assert any(e.changed for e in sim.decisions), "the load makes the policy scale"

    # A live controller on a fake clock, fed the observations the gateway recorded.
    clock = FakeClock(start_s=0.0)
    recorded = iter(sim.decisions)
    current: list[ScalingEvent] = []
    applied: list[int] = []

    def observe() -> Observation:
        return current[0].sample.obs

    # The oracle's foresight is part of the recorded input, like the observations.
    foresight = DemandForesight(arrivals, service, 0.2)

    controller = AutoscaleController(
        build_policy(name, SETTINGS),
        clock=clock,
        observe=observe,
        apply=applied.append,
        foresight=foresight,
        keep_events=None,
    )
    live = []
    for event in recorded:
        clock.advance(event.t_s - clock.monotonic())
        current[:] = [event]
        live.append(controller.tick())
    assert [(e.t_s, e.to_replicas, e.reason) for e in live] == [
        (e.t_s, e.to_replicas, e.reason) for e in sim.decisions
    ]
    assert applied == [e.to_replicas for e in sim.decisions if e.changed]
    assert list(controller.events) == live


def test_controller_applies_only_changes_and_records_each_decision() -> None:
    clock = FakeClock(start_s=100.0)
    applied: list[int] = []
    replicas = [0]

    def observe() -> Observation:
        return Observation(replicas[0], replicas[0], 0, 0, 0.0, 0, 0)

    def apply(n: int) -> None:
        applied.append(n)
        replicas[0] = n

    seen: list[ScalingEvent] = []
    controller = AutoscaleController(
        fixed(3), clock=clock, observe=observe, apply=apply, keep_events=2, on_event=seen.append
    )
    for _ in range(3):
        controller.tick()
        clock.advance(controller.interval_s)
    assert applied == [3]
    assert [e.changed for e in seen] == [True, False, False]
    assert len(controller.events) == 2  # bounded log
    assert seen[0].reason == "fixed"
    assert seen[1].sample.dt_s == controller.interval_s
    assert seen[0].from_replicas == 0
    assert seen[0].to_replicas == 3
