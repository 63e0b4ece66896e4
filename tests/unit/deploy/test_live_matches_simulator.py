"""The live controller and the trace simulator make the same decisions from the same load.

A recorded load (the first 400 requests of the Azure LLM trace, time-scaled x20 so it
needs several replicas) is replayed through :func:`modelyard.autoscale.simulate` with the
policy a deployment runs; the simulator's per-tick observations are then turned into the
gateway's cumulative counters and fed to the live controller's scaling path
(:class:`~modelyard.deploy._scaling.Autoscalers`). Every decision must match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelyard.autoscale import SimConfig, load_timestamps, simulate
from modelyard.core.clock import FakeClock
from modelyard.core.deployments import Deployment, Replica, Revision, RuntimeSettings, ScalingConfig
from modelyard.deploy import deployment_policy
from modelyard.deploy._pass import Pass
from modelyard.deploy._scaling import Autoscalers
from modelyard.deploy.signals import RevisionCounters, observation

TRACE = Path(__file__).parents[2] / "data" / "azure_llm_conv_2023_first400.csv"
CONFIG = ScalingConfig(
    min_replicas=0,
    max_replicas=6,
    target_concurrency=2,
    idle_grace_s=10,
    stable_window_s=20,
    panic_window_s=4,
    tick_s=1.0,
)


def replay() -> Any:
    trace = load_timestamps(TRACE, time_column="TIMESTAMP")
    arrivals = 5.0 + (trace.arrival_s - trace.arrival_s[0]) / 20.0  # a quiet start, then x20
    service = np.full(arrivals.shape, 0.4)
    cfg = SimConfig(concurrency_per_replica=2, cold_start_s=1.0, keep_decisions=True)
    return simulate(deployment_policy(CONFIG), arrivals, service, cfg)


def counters_of(decisions: list[Any]) -> list[RevisionCounters]:
    """The gateway's cumulative counters that would have produced these observations."""
    out, arrivals, done, svc, sq, area = [], 0, 0, 0.0, 0.0, 0.0
    for d in decisions:
        obs, dt = d.sample.obs, d.sample.dt_s
        arrivals += obs.arrivals
        done += obs.completions
        svc += obs.completed_service_s
        sq += obs.completed_service_sq_s2
        area += obs.mean_concurrency * dt
        counters = RevisionCounters(
            now_s=d.t_s,
            in_flight=obs.in_flight,
            queued=obs.queued,
            arrivals=arrivals,
            completions=done,
            service_count=done,
            service_s_sum=svc,
            service_sq_s2_sum=sq,
            load_area=area,
        )
        out.append(counters)
    return out


def test_counters_reproduce_the_simulators_observations() -> None:
    sim = replay()
    prev = None
    for d, cur in zip(sim.decisions, counters_of(sim.decisions), strict=True):
        want = d.sample.obs
        obs = observation(prev, cur, replicas=want.replicas, ready_replicas=want.ready_replicas)
        got = (obs.arrivals, obs.completions, obs.in_flight, obs.queued)
        assert got == (want.arrivals, want.completions, want.in_flight, want.queued)
        assert abs(obs.mean_concurrency - want.mean_concurrency) < 1e-6
        prev = cur


def test_live_controller_decides_like_the_simulator() -> None:
    sim = replay()
    assert max(d.to_replicas for d in sim.decisions) >= 3  # the load needs scaling
    assert sim.decisions[0].sample.obs.load == 0
    clock = FakeClock(start_s=0.0)
    live = Autoscalers(clock)
    rev = Revision(1, "m", 1, "models:/m/1", RuntimeSettings(), "ready", "", 100, 0.0, 0)
    dep = Deployment(1, "default", "d", CONFIG, "active", 1, None, None, (rev,), 1, "u", 0, 0)
    decided = []
    for d, cur in zip(sim.decisions, counters_of(sim.decisions), strict=True):
        clock.advance(d.t_s - clock.monotonic())
        obs = d.sample.obs
        replicas = [
            Replica(
                f"r{i}",
                1,
                1,
                0,
                0,
                "ready" if i < obs.ready_replicas else "starting",
                "fork",
                False,
                1.0,
                512,
                0,
                None,
                None,
                "",
            )
            for i in range(obs.replicas)
        ]
        # The simulator ticks early when a request arrives at zero replicas; live, that is
        # the gateway's wake-up.
        woken = d.sample.dt_s < CONFIG.tick_s - 1e-9
        decided.append(live.scale(dep, rev, replicas, {1: cur}, woken, Pass()))
    assert decided == [d.to_replicas for d in sim.decisions]
