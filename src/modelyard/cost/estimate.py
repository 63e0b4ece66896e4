"""``modelyard cost estimate``: serving options priced on a replayed trace.

Each option is run on the same requests: replica options (``provisioned:N``,
``autoscaled:<policy>``, ``spot``) through the autoscale simulator
(:func:`modelyard.autoscale.simulate`, never a copy of it), ``serverless`` through
:mod:`._serverless`. Replica options cost the simulator's replica-seconds times what one
replica with the requested vCPU, memory and GPU costs per second
(:meth:`PriceCatalog.replica_second`, less the spot discount on spot capacity). Then
:func:`recommend` picks the cheapest option whose SLO misses (failures included) stay
within a budget.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from modelyard.autoscale.experiment import Experiment, run_policies
from modelyard.autoscale.registry import POLICY_NAMES
from modelyard.autoscale.report import summarize
from modelyard.autoscale.simulator import SimResult
from modelyard.autoscale.traces import FloatArray, Trace
from modelyard.core.errors import InvalidInput
from modelyard.cost.prices import HOUR_S, PriceCatalog
from modelyard.cost.serverless import (
    ServerlessConfig,
    ServerlessRates,
    serverless_cost,
    simulate_serverless,
)

#: The autoscaling policies an ``autoscaled:`` or ``spot:`` option may name.
AUTOSCALED_POLICIES = tuple(p for p in POLICY_NAMES if ":" not in p)
OPTION_GRAMMAR = (
    "provisioned:N, provisioned:auto, autoscaled[:POLICY], spot, spot:N, spot:auto, "
    f"spot:POLICY, serverless (POLICY: {', '.join(AUTOSCALED_POLICIES)})"
)
#: Lambda gives a function one vCPU per 1,769 MB of memory (AWS Lambda docs, "Configure
#: Lambda function memory").
LAMBDA_MIB_PER_VCPU = 1769.0


@dataclass(frozen=True)
class OptionSpec:
    """One option of ``--options``.

    Attributes:
        name: as shown in the results (``provisioned:4``, ``autoscaled:default``, ``spot``).
        kind: ``provisioned``, ``autoscaled`` or ``serverless``.
        policy: the simulator's policy (``fixed:4``, ``default``); ``""`` for serverless
            and for ``provisioned:auto`` (sized by the estimate).
        spot: priced with the catalog's spot discount.
    """

    name: str
    kind: str
    policy: str = ""
    spot: bool = False

    @property
    def auto(self) -> bool:
        return self.kind == "provisioned" and not self.policy


def _parse_option(text: str) -> OptionSpec:
    head, _, arg = text.partition(":")
    if head == "serverless" and not arg:
        return OptionSpec("serverless", "serverless")
    if head in ("provisioned", "spot") and (arg == "auto" or re.fullmatch(r"\d+", arg)):
        spot = head == "spot"
        if arg == "auto":
            return OptionSpec(f"{head}:auto", "provisioned", spot=spot)
        if int(arg) < 1:
            raise InvalidInput(f"--options: {text!r} needs at least 1 replica")
        return OptionSpec(f"{head}:{int(arg)}", "provisioned", f"fixed:{int(arg)}", spot)
    if head in ("autoscaled", "spot") and (arg or "default") in AUTOSCALED_POLICIES:
        policy = arg or "default"
        if head == "spot":
            return OptionSpec("spot" if policy == "default" else f"spot:{policy}",
                              "autoscaled", policy, spot=True)  # fmt: skip
        return OptionSpec(f"autoscaled:{policy}", "autoscaled", policy)
    if head == "provisioned":
        raise InvalidInput(
            f"--options: {text!r}: say how many replicas, provisioned:N (or provisioned:auto)"
        )
    raise InvalidInput(f"--options: unknown option {text!r}; choose from {OPTION_GRAMMAR}")


def parse_options(text: str) -> list[OptionSpec]:
    """``"provisioned:4,autoscaled:default,serverless,spot"`` → options, in order.

    Raises:
        InvalidInput: an unknown option, a malformed one, none, or one named twice.
    """
    specs = [_parse_option(part.strip().lower()) for part in text.split(",") if part.strip()]
    if not specs:
        raise InvalidInput(f"--options: name at least one option ({OPTION_GRAMMAR})")
    names = [spec.name for spec in specs]
    for name in names:
        if names.count(name) > 1:
            raise InvalidInput(f"--options: {name} is named twice in {text!r}")
    return specs


@dataclass(frozen=True)
class Resources:
    """What one replica (or serverless instance) asks for: vCPU, memory GiB, GPUs."""

    cpu: float = 1.0
    memory_gib: float = 2.0
    gpu: float = 0.0

    def __post_init__(self) -> None:
        for name, value in (("--cpu", self.cpu), ("--memory-gb", self.memory_gib),
                            ("--gpu", self.gpu)):  # fmt: skip
            if not (value >= 0 and math.isfinite(value)):
                raise InvalidInput(f"{name} must be a finite number >= 0, got {value}")
        if self.memory_gib <= 0:
            raise InvalidInput(f"--memory-gb must be > 0, got {self.memory_gib}")


@dataclass(frozen=True)
class OptionResult:
    """One option's row; the field names are the ``--json`` keys.

    ``cost`` is in the catalog's currency over the whole trace; ``slo_misses`` counts
    every request that missed the SLO, failures (throttled, timed out, dropped) included;
    latency percentiles are over served requests. ``replica_hours`` is set for replica
    options, ``gib_seconds`` (billed memory x duration) for serverless.
    """

    name: str
    kind: str
    policy: str
    spot: bool
    requests: int
    cost: float
    cost_per_1k: float
    slo_misses: int
    slo_miss_pct: float
    failures: int
    throttled: int
    timed_out: int
    dropped: int
    cold_starts: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    replica_hours: float | None
    gib_seconds: float | None
    max_instances: int
    scale_events: int

    @property
    def failure_pct(self) -> float:
        return self.failures * 100.0 / max(self.requests, 1)

    @property
    def label(self) -> str:
        """The name, with the replica count an ``…:auto`` option was sized to."""
        if self.name.endswith(":auto") and self.policy.startswith("fixed:"):
            count = int(self.policy.split(":")[1])
            return f"{self.name} ({count} replica{'s' if count != 1 else ''})"
        return self.name


class Rankable(Protocol):
    """What :func:`recommend` reads of an option."""

    @property
    def name(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def cost(self) -> float: ...
    @property
    def slo_miss_pct(self) -> float: ...
    @property
    def failure_pct(self) -> float: ...


@dataclass(frozen=True)
class Recommendation:
    """The option to choose and why, in one line.

    Attributes:
        option: the cheapest option within the budget; if none is, the one with the
            fewest misses (then ``within_budget`` is False); None only without options.
        within_budget: whether ``option`` keeps SLO misses within the budget.
        reason: one line naming the runner-up and the money difference.
    """

    option: str | None
    within_budget: bool
    reason: str


def format_money(value: float) -> str:
    """Cents for sums of a unit or more, three significant digits below (``0.0296``)."""
    if value == 0 or abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def recommend(
    options: Sequence[Rankable], max_slo_miss_pct: float, currency: str
) -> Recommendation:
    """The cheapest option whose SLO misses and failures stay within ``max_slo_miss_pct``.

    Ties on cost go to fewer misses, then to the earlier option. The reason names the
    runner-up (the next cheapest qualifying option) and the difference; a cheaper
    option that misses too often is named too. Pure: no I/O, no clock.
    """
    if not options:
        return Recommendation(None, False, "no options to compare")
    budget = f"{max_slo_miss_pct:g}%"
    order = {id(o): i for i, o in enumerate(options)}

    def money(o: Rankable) -> str:
        return f"{format_money(o.cost)} {currency}"

    ok = sorted(
        (o for o in options
         if o.slo_miss_pct <= max_slo_miss_pct and o.failure_pct <= max_slo_miss_pct),
        key=lambda o: (o.cost, o.slo_miss_pct, order[id(o)]),
    )  # fmt: skip
    if not ok:
        fewest = min(options, key=lambda o: (o.slo_miss_pct, o.cost, order[id(o)]))
        return Recommendation(
            fewest.name,
            False,
            f"no option keeps SLO misses within {budget}; {fewest.label} misses the fewest "
            f"({fewest.slo_miss_pct:.2f}%, {money(fewest)})",
        )
    best = ok[0]
    if len(ok) > 1:
        second = ok[1]
        change = (best.cost - second.cost) / second.cost * 100.0 if second.cost > 0 else 0.0
        reason = (
            f"{best.label}: cheapest option within {budget} SLO misses: {money(best)} vs "
            f"{money(second)} for {second.label} ({change:+.0f}%)"
        )
    else:
        reason = f"{best.label}: the only option within {budget} SLO misses ({money(best)})"
    within = {id(o) for o in ok}
    cheaper = [o for o in options if o.cost < best.cost and id(o) not in within]
    if cheaper:
        cheapest = min(cheaper, key=lambda o: (o.cost, order[id(o)]))
        reason += (
            f"; {cheapest.label} costs less ({money(cheapest)}) but misses "
            f"{cheapest.slo_miss_pct:.2f}%"
        )
    return Recommendation(best.name, True, reason)


@dataclass(frozen=True)
class Estimate:
    """Every option's numbers, the runs behind them (for plots) and the verdict.

    Attributes:
        currency: the catalog's currency.
        options: one row per option, in the order asked.
        runs: option name → its replay, in the simulator's terms.
        recommendation: see :func:`recommend`.
        notes: assumptions and adjustments a reader should know.
    """

    currency: str
    options: tuple[OptionResult, ...]
    runs: Mapping[str, SimResult]
    recommendation: Recommendation
    notes: tuple[str, ...]


def _result(
    spec: OptionSpec,
    sim: SimResult,
    experiment: Experiment,
    cost: float,
    *,
    throttled: int = 0,
    timed_out: int = 0,
    replica_hours: float | None = None,
    gib_seconds: float | None = None,
) -> OptionResult:
    """One option's row from its replay (the simulator's summary gives the latencies)."""
    summary = summarize(sim, experiment.slo, 0.0)
    misses = int(experiment.slo.missed(sim).sum())
    n = summary.requests
    dropped = sim.dropped - throttled - timed_out  # a failed serverless request is "dropped"
    return OptionResult(
        name=spec.name,
        kind=spec.kind,
        policy=spec.policy,
        spot=spec.spot,
        requests=n,
        cost=cost,
        cost_per_1k=cost * 1000.0 / max(n, 1),
        slo_misses=misses,
        slo_miss_pct=misses * 100.0 / max(n, 1),
        failures=sim.dropped,
        throttled=throttled,
        timed_out=timed_out,
        dropped=dropped,
        cold_starts=sim.cold_starts,
        p50_ms=summary.p50_ms,
        p95_ms=summary.p95_ms,
        p99_ms=summary.p99_ms,
        replica_hours=replica_hours,
        gib_seconds=gib_seconds,
        max_instances=sim.max_replicas,
        scale_events=sim.scale_events,
    )


class _Replays:
    """Simulator runs by policy name, each run once however many options share it."""

    def __init__(self, trace: Trace, service_s: FloatArray, experiment: Experiment) -> None:
        self.trace, self.service_s, self.experiment = trace, service_s, experiment
        self.done: dict[str, SimResult] = {}

    def get(self, policy: str) -> SimResult:
        if policy not in self.done:
            runs = run_policies(self.trace, self.service_s, [policy], self.experiment)
            self.done[policy] = runs[policy]
        return self.done[policy]

    def ensure(self, policies: Sequence[str]) -> None:
        missing = [p for p in dict.fromkeys(policies) if p not in self.done]
        if missing:
            self.done.update(run_policies(self.trace, self.service_s, missing, self.experiment))

    def smallest_fixed(self, max_slo_miss_pct: float) -> tuple[int, bool]:
        """The fewest fixed replicas that keep SLO misses within the budget (bisection:
        more replicas never queue longer), and whether any count up to the
        experiment's ``max_replicas`` does."""

        def fits(n: int) -> bool:
            sim = self.get(f"fixed:{n}")
            misses = int(self.experiment.slo.missed(sim).sum())
            return misses * 100.0 <= max_slo_miss_pct * max(sim.arrival_s.size, 1)

        low, high = 1, self.experiment.max_replicas
        if not fits(high):
            return high, False
        while low < high:
            middle = (low + high) // 2
            if fits(middle):
                high = middle
            else:
                low = middle + 1
        return high, True


def estimate(
    trace: Trace,
    service_s: FloatArray,
    specs: Sequence[OptionSpec],
    *,
    experiment: Experiment,
    resources: Resources,
    serverless: ServerlessConfig,
    catalog: PriceCatalog,
    max_slo_miss_pct: float = 1.0,
) -> Estimate:
    """Replay the trace for every option, price it and recommend one.

    Args:
        trace: the requests (arrivals ascending).
        service_s: each request's service time, seconds.
        specs: the options, from :func:`parse_options`.
        experiment: the replicas' deployment: target concurrency, cold start, SLO,
            max replicas, gateway queue.
        resources: vCPU, memory and GPU of one replica.
        serverless: the serverless platform (its memory and GPU should match
            ``resources``).
        catalog: prices and the spot discount.
        max_slo_miss_pct: the SLO budget the recommendation keeps to.

    Raises:
        InvalidInput: a negative budget, or inputs the simulators refuse.
    """
    if not (0 <= max_slo_miss_pct <= 100):
        raise InvalidInput(f"--max-slo-miss-pct must be between 0 and 100, got {max_slo_miss_pct}")
    replays = _Replays(trace, service_s, experiment)
    replays.ensure([s.policy for s in specs if s.kind != "serverless" and not s.auto])
    notes = list(trace.notes)
    rows: list[OptionResult] = []
    runs: dict[str, SimResult] = {}
    for spec in specs:
        if spec.kind == "serverless":
            run = simulate_serverless(trace.arrival_s, service_s, serverless)
            sim = run.as_sim_result(spec.name)
            cost = serverless_cost(run, ServerlessRates.from_catalog(catalog))
            row = _result(spec, sim, experiment, cost, throttled=run.throttled,
                          timed_out=run.timed_out, gib_seconds=run.gib_seconds)  # fmt: skip
        else:
            if spec.auto:
                count, fits = replays.smallest_fixed(max_slo_miss_pct)
                spec = OptionSpec(spec.name, spec.kind, f"fixed:{count}", spec.spot)
                notes.append(
                    f"{spec.name}: {count} replica{'s' if count != 1 else ''}, the fewest "
                    f"that keep SLO misses within {max_slo_miss_pct:g}%"
                    if fits
                    else f"{spec.name}: even {count} replicas (--max-replicas) miss more "
                    f"than {max_slo_miss_pct:g}% of requests' SLO"
                )
            sim = replays.get(spec.policy)
            rate = catalog.replica_second(
                resources.cpu, resources.memory_gib, resources.gpu, spot=spec.spot
            )
            row = _result(spec, sim, experiment, sim.replica_seconds * rate,
                          replica_hours=sim.replica_seconds / HOUR_S)  # fmt: skip
        runs[spec.name] = sim
        rows.append(row)
    notes += _notes(specs, resources, serverless)
    return Estimate(
        catalog.currency,
        tuple(rows),
        runs,
        recommend(rows, max_slo_miss_pct, catalog.currency),
        tuple(notes),
    )


def _notes(
    specs: Sequence[OptionSpec], resources: Resources, serverless: ServerlessConfig
) -> list[str]:
    notes = []
    if any(s.spot for s in specs):
        notes.append(
            "spot: priced with the catalog's spot discount; spot capacity can be reclaimed "
            "at short notice, and interruptions are not modelled"
        )
    if any(s.kind == "serverless" for s in specs):
        if serverless.gpu > 0:
            notes.append(
                "serverless: GPUs are billed per second of billed duration at the "
                "provisioned GPU price (the catalog has no serverless GPU price)"
            )
        vcpu = serverless.memory_gib * 1024.0 / LAMBDA_MIB_PER_VCPU
        if resources.cpu > vcpu + 1e-9:
            notes.append(
                f"serverless: AWS Lambda gives {serverless.memory_gib:g} GB about "
                f"{vcpu:.2f} vCPU, less than --cpu {resources.cpu:g}: requests may run "
                "slower than the service time assumed"
            )
    return notes
