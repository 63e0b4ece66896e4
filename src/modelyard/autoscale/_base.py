"""The autoscaling policy contract.

A policy is a pure function: it maps what the controller observed (a frozen
:class:`ScalingContext`) and the state it returned last time to a :class:`Decision`
(desired replicas, new state, reason). It reads no clock, does no I/O and mutates
nothing; the :class:`~modelyard.autoscale.AutoscaleController` owns time, state and
the history of samples. That is what lets the same policy drive live replicas and the
trace-replay simulator, and be checked with Hypothesis.

Bounds, scale-to-zero and delays are not part of a policy: wrap any policy in
:class:`~modelyard.autoscale.Bounded`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, Protocol, TypeAlias, TypeVar

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Observation:
    """What the gateway and the replicas report at one controller tick.

    Attributes:
        replicas: replicas that exist and are not draining, starting ones included.
        ready_replicas: those of ``replicas`` that finished starting and take requests.
        in_flight: requests being served right now, over all replicas.
        queued: requests waiting in the gateway's queue right now.
        mean_concurrency: time-average of ``in_flight + queued`` since the previous
            observation (what Knative's queue-proxy reports), so a policy that ticks
            rarely still sees the load between ticks.
        arrivals: requests that arrived since the previous observation.
        completions: requests that finished since the previous observation.
        completed_service_s: the summed service times (start of service to finish) of
            those ``completions``; with them a policy learns the mean service time.
        completed_service_sq_s2: the summed squares of those service times, for their
            variability.
    """

    replicas: int
    ready_replicas: int
    in_flight: int
    queued: int
    mean_concurrency: float
    arrivals: int
    completions: int
    completed_service_s: float = 0.0
    completed_service_sq_s2: float = 0.0

    @property
    def load(self) -> int:
        """Requests in the system now: in flight plus queued."""
        return self.in_flight + self.queued


@dataclass(frozen=True, slots=True)
class Sample:
    """An :class:`Observation` stamped by the controller with its time.

    Attributes:
        t_s: controller time of the observation (seconds, monotonic).
        dt_s: seconds since the previous sample (the first sample: the policy interval).
        obs: the observation.
    """

    t_s: float
    dt_s: float
    obs: Observation


@dataclass(frozen=True, slots=True)
class ScalingContext:
    """Everything a policy may look at for one decision.

    Attributes:
        now_s: controller time (seconds, monotonic; only differences matter).
        current_replicas: replicas now (starting ones included, draining ones not).
        ready_replicas: replicas ready to serve.
        sample: the newest sample; ``history[-1] is sample``.
        history: samples of the last ``policy.history_s`` seconds, oldest first.
        peak_demand_ahead: only for policies with ``foresight_s > 0`` (the oracle), given
            by the simulator: the most requests that would be in service at once over
            ``[now_s, now_s + foresight_s]`` if none waited. ``None`` for every other policy.
    """

    now_s: float
    current_replicas: int
    ready_replicas: int
    sample: Sample
    history: tuple[Sample, ...]
    peak_demand_ahead: int | None = None


class Decision(NamedTuple, Generic[S]):
    """A policy's answer: ``(desired_replicas, state)`` plus a reason for the event log."""

    desired_replicas: int
    state: S
    reason: str


class Policy(Protocol[S]):
    """A scaling policy: configuration plus a pure ``decide`` function.

    Contract:
        - ``decide`` is pure: the same context and state give the same decision, and it
          neither mutates ``state`` nor keeps anything on ``self``.
        - ``desired_replicas`` is ``>= 0``; bounds are applied by :class:`Bounded`, not here.
        - The controller calls ``decide`` every ``interval_s`` seconds (and possibly once
          early when a request arrives while there are no replicas), with at least the
          last ``history_s`` seconds of samples.
        - Thread safety: a policy object is immutable and may be shared; its state is
          owned by exactly one controller.
    """

    @property
    def name(self) -> str:
        """Short name used in tables and events (``kpa``, ``fixed:4``)."""
        ...

    @property
    def interval_s(self) -> float:
        """How often the controller should call :meth:`decide`."""
        ...

    @property
    def history_s(self) -> float:
        """How many seconds of samples the context must carry."""
        ...

    @property
    def foresight_s(self) -> float:
        """Seconds of future demand the policy is shown; 0 for every real policy."""
        ...

    def initial_state(self) -> S:
        """The state before the first decision."""
        ...

    def decide(self, ctx: ScalingContext, state: S) -> Decision[S]:
        """Decide the desired replica count.

        Args:
            ctx: the observations at this tick.
            state: what this policy returned last time (or :meth:`initial_state`).

        Returns:
            The desired replicas (``>= 0``), the new state and a short reason.
        """
        ...


# The registry and the CLI handle policies whose state type differs per policy.
AnyPolicy: TypeAlias = "Policy[Any]"


def ceil_div(load: float, per_replica: float) -> int:
    """Replicas needed to carry ``load`` at ``per_replica`` each (0 for no load)."""
    if load <= 0:
        return 0
    whole = load / per_replica
    n = int(whole)
    # Tolerate float noise: 8.000000001 replicas of load is 8 replicas, not 9.
    return n if whole - n <= 1e-9 else n + 1


def window(history: tuple[Sample, ...], now_s: float, seconds: float) -> tuple[Sample, ...]:
    """The samples of the last ``seconds`` (by their time stamps), oldest first."""
    start = now_s - seconds + 1e-9
    i = len(history)
    while i > 0 and history[i - 1].t_s > start:
        i -= 1
    return history[i:]


def mean_concurrency(samples: tuple[Sample, ...]) -> float:
    """Time-weighted mean of ``in_flight + queued`` over ``samples`` (0 if empty)."""
    total_s = 0.0
    area = 0.0
    for s in samples:
        total_s += s.dt_s
        area += s.obs.mean_concurrency * s.dt_s
    return area / total_s if total_s > 0 else 0.0
