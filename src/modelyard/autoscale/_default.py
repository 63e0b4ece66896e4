"""modelyard's default policy: queueing-model sizing, one-tick panic, forecast, keep-alive.

Mechanisms (each explained with its numbers in ``docs/autoscaling.md``):

1. Rates from the gateway's own counters: arrival rate as two exponentially weighted
   moving averages (fast, 5 s; slow, 30 s) and the mean service time from completions
   (a 300 s average), so nothing about the workload is configured.
2. A short-horizon forecast: the gap between the fast and the slow average is the lag of a
   linear trend (Brown's double smoothing), extrapolated over the reaction horizon
   ``interval_s + cold_start_s``; the rate planned for is the largest of slow, fast and
   forecast, so a rising burst is provisioned before it peaks.
3. Sizing from the SLO, not a utilization constant: if a replica started now is ready
   within the queueing budget (``cold_start_s + interval_s <= budget``), cold starts hide
   inside the SLO and the policy only carries the load there is. Otherwise it provisions
   the fewest request slots for which the Erlang C (M/M/N) tail keeps
   ``P(wait > budget) <= miss_budget`` at the planned rate: headroom grows like
   ``sqrt(load)``.
4. Panic within one tick: when the queued backlog cannot drain within half the queueing
   budget, or the fast rate's load exceeds the ready slots, the backlog is added to the
   slots at once and scaling down is forbidden for a panic hold.
5. Keep-alive and scale-to-zero: a replica that is no longer needed is kept for the
   ski-rental break-even (``cold_start_s``) when cold starts are within the SLO; when
   they are not, the decision comes from the observed idle-gap distribution (the hybrid
   histogram of "Serverless in the Wild", ATC '20): keep one replica for the 99th
   percentile of idle gaps (+10 %), and if even the 5th percentile of gaps is longer
   than a cold start, release it at once and pre-warm it a cold start before that head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from modelyard.autoscale._base import Decision, ScalingContext, ceil_div
from modelyard.autoscale._bounds import Bounded
from modelyard.autoscale._queueing import IdleGapHistogram, slots_for_wait
from modelyard.core.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class DefaultState:
    """Smoothed rates, service-time estimate, idle-gap histogram and hold timers."""

    t_s: float | None = None
    rate_fast: float = 0.0
    rate_slow: float = 0.0
    service_sum_s: float = 0.0
    service_sq_sum_s2: float = 0.0
    service_count: float = 0.0
    idle_since_s: float | None = None
    gaps: IdleGapHistogram = field(default_factory=IdleGapHistogram)
    peak_replicas: int = 0
    peak_t_s: float = -math.inf
    panic_until_s: float = -math.inf


@dataclass(frozen=True)
class DefaultCore:
    """The default decision (bounds and the minimum are applied by :class:`Bounded`).

    Args:
        concurrency_per_replica: requests one replica serves at once (target concurrency).
        slo_s: the latency SLO, or the queueing-delay SLO if ``slo_includes_service`` is
            false.
        cold_start_s: how long a new replica takes to become ready (measured in a live
            deployment; given in the simulator).
        slo_includes_service: whether ``slo_s`` bounds the whole latency (true) or only
            the wait before service starts (false).
        miss_budget: the share of requests that may miss the SLO through queueing; half of
            a 1 % SLO, leaving the rest to forecast error.
        tick_s: decision interval.
        fast_tau_s: time constant of the fast rate average (at least one service time).
        slow_tau_s: time constant of the slow rate average (at least six service times).
        service_tau_s: time constant of the service-time average.
        downscale_window_s: how long a replica no longer needed is kept when cold starts
            would break the SLO.
        max_keep_alive_s: keep-alive while too few idle gaps have been seen, and its cap.
        min_gaps: idle gaps needed before the histogram is trusted.
        service_prior_s: service time assumed before the first completion.
    """

    concurrency_per_replica: float
    slo_s: float
    cold_start_s: float
    slo_includes_service: bool = True
    miss_budget: float = 0.005
    tick_s: float = 1.0
    fast_tau_s: float = 5.0
    slow_tau_s: float = 30.0
    service_tau_s: float = 300.0
    downscale_window_s: float = 30.0
    max_keep_alive_s: float = 600.0
    min_gaps: int = 10
    service_prior_s: float = 0.1
    name: str = "default"

    def __post_init__(self) -> None:
        if self.concurrency_per_replica <= 0 or self.slo_s <= 0 or self.cold_start_s < 0:
            raise InvalidInput("default policy: concurrency and SLO must be > 0, cold start >= 0")

    @property
    def interval_s(self) -> float:
        return self.tick_s

    @property
    def history_s(self) -> float:
        return 0.0

    @property
    def foresight_s(self) -> float:
        return 0.0

    def initial_state(self) -> DefaultState:
        return DefaultState()

    def decide(self, ctx: ScalingContext, state: DefaultState) -> Decision[DefaultState]:
        now, obs = ctx.now_s, ctx.sample.obs
        dt = max(ctx.sample.dt_s, 1e-9)
        rate = obs.arrivals / dt
        keep = math.exp(-dt / self.service_tau_s)
        service_sum = state.service_sum_s * keep + obs.completed_service_s
        service_sq = state.service_sq_sum_s2 * keep + obs.completed_service_sq_s2
        service_count = state.service_count * keep + obs.completions
        service_s, scv = self.service_prior_s, 1.0
        if service_count > 1e-6 and service_sum > 0:
            service_s = service_sum / service_count
            scv = max(service_sq / service_count / service_s**2 - 1.0, 0.0)

        # Averaging arrivals over less than a service time only adds noise to the offered
        # load (requests in service span a service time), so the windows stretch with it.
        fast_tau = max(self.fast_tau_s, service_s)
        slow_tau = max(self.slow_tau_s, 6.0 * service_s)
        if state.t_s is None:
            fast = slow = rate
        else:
            fast = state.rate_fast + (rate - state.rate_fast) * (1 - math.exp(-dt / fast_tau))
            slow = state.rate_slow + (rate - state.rate_slow) * (1 - math.exp(-dt / slow_tau))

        horizon_s = self.tick_s + self.cold_start_s
        trend = (fast - slow) / (slow_tau - fast_tau)
        forecast = max(fast + trend * (fast_tau + horizon_s), 0.0)
        planned = max(fast, slow, forecast)
        budget_s = self.slo_s - service_s if self.slo_includes_service else self.slo_s
        relaxed = horizon_s <= budget_s  # a cold start fits inside the SLO

        ready_slots = ctx.ready_replicas * self.concurrency_per_replica
        drain_s = obs.queued * service_s / ready_slots if ready_slots else math.inf
        # With cold starts inside the SLO the backlog is already in the load; no hold needed.
        panic = not relaxed and (
            (obs.queued > 0 and drain_s > budget_s / 2) or fast * service_s > ready_slots
        )
        panic_until = now + horizon_s + fast_tau if panic else state.panic_until_s
        if relaxed:
            slots, why = obs.load, f"load {obs.load} (cold start fits the SLO)"
        else:
            slots = slots_for_wait(planned * service_s, budget_s, service_s, self.miss_budget, scv)
            slots = max(slots + (obs.queued if panic else 0), obs.in_flight)
            why = f"rate {planned:.2f}/s x {service_s * 1000:.0f} ms -> {slots} slots"
        want = ceil_div(slots, self.concurrency_per_replica)

        gaps, idle_since = state.gaps, state.idle_since_s
        if obs.arrivals > 0 or obs.load > 0:
            if idle_since is not None and obs.arrivals > 0:
                gaps = gaps.add(now - idle_since)
            idle_since = None
        elif idle_since is None:
            idle_since = now

        cur = ctx.current_replicas
        hold_s = self.cold_start_s if relaxed else self.downscale_window_s
        peak, peak_t = state.peak_replicas, state.peak_t_s
        if want >= peak or now - peak_t > hold_s:
            peak, peak_t = want, now
        if now < panic_until:
            want, why = max(want, cur), f"panic: {why}, no scale-down"
        elif want < peak:
            want, why = min(peak, max(cur, want)), f"{why}; keeping {peak} for {hold_s:.0f}s"

        if idle_since is not None and not relaxed:
            want, why = self._keep_alive(now - idle_since, gaps, want)

        new_state = DefaultState(
            now,
            fast,
            slow,
            service_sum,
            service_sq,
            service_count,
            idle_since,
            gaps,
            peak,
            peak_t,
            panic_until,
        )
        return Decision(want, new_state, why)

    def _keep_alive(self, idle_s: float, gaps: IdleGapHistogram, want: int) -> tuple[int, str]:
        """Idle with cold starts that would break the SLO: the hybrid-histogram rule."""
        if gaps.total < self.min_gaps:
            keep_s = self.max_keep_alive_s
            return (
                (max(want, 1), f"idle {idle_s:.0f}s, few gaps seen: keep-alive {keep_s:.0f}s")
                if (idle_s < keep_s)
                else (0, f"idle {idle_s:.0f}s > keep-alive {keep_s:.0f}s")
            )
        tail_s = min(gaps.quantile_s(0.99) * 1.1, self.max_keep_alive_s)
        head_s = gaps.lower_quantile_s(0.05) * 0.9
        prewarm_at_s = head_s - self.cold_start_s - self.tick_s
        if idle_s >= tail_s:
            return 0, f"idle {idle_s:.0f}s > p99 idle gap {tail_s:.0f}s: scale to zero"
        if prewarm_at_s > 0 and idle_s < prewarm_at_s:
            return 0, f"idle {idle_s:.0f}s, next request unlikely before {head_s:.0f}s"
        return max(want, 1), f"idle {idle_s:.0f}s: keep warm until {tail_s:.0f}s"


def default_policy(
    concurrency_per_replica: float,
    slo_s: float,
    cold_start_s: float,
    *,
    slo_includes_service: bool = True,
    min_replicas: int = 0,
    max_replicas: int = 100,
) -> Bounded[DefaultState]:
    """The default policy, scale-to-zero allowed (``min_replicas=0``)."""
    core = DefaultCore(
        concurrency_per_replica, slo_s, cold_start_s, slo_includes_service=slo_includes_service
    )
    return Bounded(core, min_replicas=min_replicas, max_replicas=max_replicas)
