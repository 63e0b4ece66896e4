"""Reference policies: the clairvoyant oracle and a fixed replica count."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.autoscale._base import Decision, ScalingContext, ceil_div
from modelyard.autoscale._bounds import Bounded
from modelyard.core.errors import InvalidInput


@dataclass(frozen=True)
class OracleCore:
    """Perfect foresight: as many replicas as the demand of the next cold start needs.

    The simulator shows it ``peak_demand_ahead``, the most requests that would be in
    service at once over ``[now, now + cold_start_s + interval_s]`` if none waited, so a
    replica it starts now is ready before the requests that need it arrive and it
    releases a replica as soon as no request within that horizon needs it. That is the
    lower bound on replica-seconds at (close to) zero SLO violations.
    """

    concurrency_per_replica: float
    cold_start_s: float
    tick_s: float = 1.0
    name: str = "oracle"

    @property
    def interval_s(self) -> float:
        return self.tick_s

    @property
    def history_s(self) -> float:
        return 0.0

    @property
    def foresight_s(self) -> float:
        return self.cold_start_s + self.tick_s

    def initial_state(self) -> None:
        return None

    def decide(self, ctx: ScalingContext, state: None) -> Decision[None]:
        if ctx.peak_demand_ahead is None:
            raise InvalidInput("the oracle policy runs only in the simulator (it needs foresight)")
        demand = max(ctx.peak_demand_ahead, ctx.sample.obs.load)
        want = ceil_div(demand, self.concurrency_per_replica)
        return Decision(want, None, f"peak demand {demand} within {self.foresight_s:.1f}s")


def oracle(
    concurrency_per_replica: float, cold_start_s: float, *, max_replicas: int = 100
) -> Bounded[None]:
    """The oracle, min 0 replicas, no delays."""
    return Bounded(
        OracleCore(concurrency_per_replica, cold_start_s), min_replicas=0, max_replicas=max_replicas
    )


@dataclass(frozen=True)
class FixedCore:
    """Always ``replicas`` replicas: the static provisioning baseline."""

    replicas: int
    tick_s: float = 10.0

    @property
    def name(self) -> str:
        return f"fixed:{self.replicas}"

    @property
    def interval_s(self) -> float:
        return self.tick_s

    @property
    def history_s(self) -> float:
        return 0.0

    @property
    def foresight_s(self) -> float:
        return 0.0

    def initial_state(self) -> None:
        return None

    def decide(self, ctx: ScalingContext, state: None) -> Decision[None]:
        return Decision(self.replicas, None, "fixed")


def fixed(replicas: int) -> Bounded[None]:
    """``fixed:N``: N replicas, always (N >= 1)."""
    if replicas < 1:
        raise InvalidInput(f"fixed:N needs N >= 1, got {replicas}")
    return Bounded(FixedCore(replicas), min_replicas=replicas, max_replicas=replicas)
