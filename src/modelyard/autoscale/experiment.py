"""One experiment: a trace, a simulated deployment, an SLO and the policies to compare."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modelyard.autoscale.registry import PolicySettings, build_policy
from modelyard.autoscale.report import PolicySummary, Slo, summarize
from modelyard.autoscale.simulator import SimConfig, SimResult, simulate
from modelyard.autoscale.traces import FloatArray, ServiceTime, Trace
from modelyard.core.errors import InvalidInput


@dataclass(frozen=True)
class Experiment:
    """The deployment every policy is replayed against.

    Attributes:
        target_concurrency: requests a replica serves at once; the policies' target.
        cold_start_s: replica start-up time.
        slo: what counts as a violation.
        max_replicas: upper bound for every policy.
        queue_limit: the gateway queue's bound (more requests are dropped).
        price_usd_per_replica_hour: for the cost column.
    """

    target_concurrency: int
    cold_start_s: float
    slo: Slo
    max_replicas: int = 100
    queue_limit: int = 1000
    price_usd_per_replica_hour: float = 0.10

    def __post_init__(self) -> None:
        if not self.slo.seconds > 0:
            raise InvalidInput("the SLO must be > 0 ms")
        if self.max_replicas < 1:
            raise InvalidInput("--max-replicas must be >= 1")
        if self.price_usd_per_replica_hour < 0:
            raise InvalidInput("--price-usd-per-replica-hour must be >= 0")

    def sim_config(self, service_s: FloatArray) -> SimConfig:
        mean_service = float(service_s.mean()) if service_s.size else 0.0
        budget = self.slo.seconds - (mean_service if self.slo.includes_service else 0.0)
        return SimConfig(
            self.target_concurrency,
            self.cold_start_s,
            queue_limit=self.queue_limit,
            foresight_smoothing_s=min(max(budget, 0.0), self.cold_start_s),
        )

    def policy_settings(self) -> PolicySettings:
        return PolicySettings(
            target_concurrency=self.target_concurrency,
            slo_s=self.slo.seconds,
            slo_includes_service=self.slo.includes_service,
            cold_start_s=self.cold_start_s,
            max_replicas=self.max_replicas,
        )


def service_times(trace: Trace, model: ServiceTime | None, seed: int) -> FloatArray:
    """The trace's own service times, or ``model`` sampled per request (seeded)."""
    if model is None:
        if trace.service_s is None:
            raise InvalidInput("no service time: give --service-time-ms or --service-time-column")
        return trace.service_s
    return model.sample(trace.requests, seed)


def run_policies(
    trace: Trace, service_s: FloatArray, policies: Sequence[str], experiment: Experiment
) -> dict[str, SimResult]:
    """Replay the trace once per policy (policies are built before any replay runs)."""
    settings = experiment.policy_settings()
    built = {name: build_policy(name, settings) for name in policies}
    config = experiment.sim_config(service_s)
    arrival = np.ascontiguousarray(trace.arrival_s)
    return {name: simulate(policy, arrival, service_s, config) for name, policy in built.items()}


def summaries(results: dict[str, SimResult], experiment: Experiment) -> dict[str, PolicySummary]:
    return {
        name: summarize(result, experiment.slo, experiment.price_usd_per_replica_hour)
        for name, result in results.items()
    }
