"""Ray Serve backend, the pure part: desired state → Serve options, Serve status → replicas.

Everything that decides something is a plain function of values here, so it is tested
without Ray (see ``tests/e2e/test_ray_serve.py``, whose property tests need no
cluster, and ``tests/unit/deploy/test_ray_load.py`` for the load signal);
:mod:`modelyard.deploy._ray_backend` does the talking and
:mod:`modelyard.deploy._ray_app` is the code that runs inside Ray.

How a deployment maps onto Serve (``docs/ray-serve.md``): one application
``<project>-<deployment>`` at route prefix ``/<deployment>`` holding an ``ingress``
deployment (the HTTP entry, splitting traffic) and one ``rev-<n>`` deployment per
revision (the model runtime). The ingress's ``user_config`` carries the routes
(revision deployment, weight), so a weight change is a ``reconfigure`` of the running
ingress replicas, and it is also the record of the last applied state that
:func:`observe` compares with what runs.

The load signal: every ingress replica counts, per revision, what it routed (the local
gateway's counters, :class:`modelyard.gateway.stats.RevisionStats`); the backend reads
each replica's report (:func:`parse_report`) and :func:`accumulate` sums them into
counters that only grow, even when an ingress replica restarts or misses a read.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence, Set
from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.core.deployments import Deployment, ReplicaState, RuntimeSettings, ScalingConfig
from modelyard.deploy._backend import Observed, ObservedReplica, RevisionTarget
from modelyard.deploy.signals import RevisionCounters

INGRESS = "ingress"
# Two ingress replicas (no CPU reserved: they only forward) on the head node, beside
# Serve's HTTP proxy (which the backend starts there only): every request passes the
# head anyway, and a worker node's loss then never takes a request's way in with it —
# the ingress sends a request whose revision replica died under it once more. Two, so
# one crashed process still leaves a way in while Serve replaces it.
INGRESS_REPLICAS = 2
INGRESS_ACTOR_OPTIONS: Mapping[str, Any] = {
    "num_cpus": 0,
    "resources": {"node:__internal_head__": 0.001},  # Ray's marker resource of the head
}
INGRESS_MAX_ONGOING = 1000
# A revision whose constructor keeps failing (a file that does not match its digest)
# is given up after this many tries: Serve marks it DEPLOY_FAILED and we report it.
CONSTRUCTOR_RETRIES = 3
ROUTES_KEY = "routes"
# Serve keeps its replica actors in this Ray namespace, under the ``actor_name`` its
# details report; the backend calls the ingress's load report on each of them.
SERVE_ACTOR_NAMESPACE = "serve"
# The ingress method that reports its counters: Serve's per-replica stats hook (Serve
# itself calls it every 10 s for request routers, which ignore ours), reachable on each
# replica actor by name, unlike a handle call, which reaches one replica of Serve's choosing.
LOAD_METHOD = "record_routing_stats"

# Serve replica state -> ours. STOPPED replicas are gone (not reported).
_REPLICA_STATES: Mapping[str, ReplicaState] = {
    "STARTING": "starting",
    "UPDATING": "starting",
    "RECOVERING": "starting",
    "RUNNING": "ready",
    "PENDING_MIGRATION": "draining",
    "STOPPING": "draining",
}


def app_name(deployment: Deployment) -> str:
    """The Serve application of a deployment: ``<project>-<deployment>``."""
    return f"{deployment.project}-{deployment.name}"


def route_prefix(deployment: Deployment) -> str:
    """The HTTP route prefix of a deployment's application: ``/<deployment>``."""
    return f"/{deployment.name}"


def revision_deployment(number: int) -> str:
    """The Serve deployment running revision ``number``: ``rev-<number>``."""
    return f"rev-{number}"


def revision_number(serve_deployment: str) -> int | None:
    """``rev-3`` -> 3; None for the ingress or anything else."""
    prefix, sep, number = serve_deployment.partition("-")
    if prefix != "rev" or not sep or not number.isdigit():
        return None
    return int(number)


def routes(targets: Sequence[RevisionTarget]) -> list[list[Any]]:
    """The ingress's routing table: ``[[serve deployment, weight], ...]`` by revision."""
    ordered = sorted(targets, key=lambda t: t.revision.number)
    return [[revision_deployment(t.revision.number), t.weight] for t in ordered]


def choose(table: Sequence[Sequence[Any]], u: float, avoid: str | None = None) -> str | None:
    """The revision deployment a request goes to, for a uniform draw ``u`` in [0, 1).

    Weighted by the table's weights; when they are all 0 (nothing is ready yet, the
    controller has not given traffic to anyone), every revision is equally likely, so a
    first request still reaches a replica (Serve queues it while one starts). With
    ``avoid`` (the revision whose replica was just lost under a request), another
    revision is chosen if one could take traffic; else ``avoid`` again (Serve then picks
    another replica of it).

    Returns:
        The deployment name, or None for an empty table.
    """
    if avoid is not None:
        others = [row for row in table if row[0] != avoid]
        if others and (
            any(int(row[1]) > 0 for row in others) or all(int(row[1]) <= 0 for row in table)
        ):
            table = others
    if not table:
        return None
    u = min(max(u, 0.0), math.nextafter(1.0, 0.0))
    weights = [max(0, int(row[1])) for row in table]
    total = sum(weights)
    if total == 0:
        return str(table[int(u * len(table))][0])
    point = u * total
    running = 0
    for row, weight in zip(table, weights, strict=True):
        running += weight
        if point < running:
            return str(row[0])
    return str(next(row[0] for row, w in zip(table, weights, strict=True) if w > 0))


def max_ongoing(config: ScalingConfig) -> int:
    """Requests one revision replica takes at once: twice the target concurrency (at
    least 4), so the batcher has rows to coalesce while the autoscaler aims lower."""
    return max(4, math.ceil(2 * config.target_concurrency))


def actor_options(settings: RuntimeSettings) -> dict[str, Any]:
    """Ray resources each replica of a revision reserves (cpu, memory, gpu)."""
    options: dict[str, Any] = {
        "num_cpus": settings.cpu,
        "memory": settings.memory_mb * 1024 * 1024,
    }
    if settings.gpu > 0:
        options["num_gpus"] = settings.gpu
    return options


def scaling_options(deployment: Deployment, target: RevisionTarget) -> dict[str, Any]:
    """How many replicas a revision deployment runs, as ``serve.deployment`` options.

    - autoscaler ``serve``: Serve's ``autoscaling_config`` between the target's min and
      max, aiming at ``target_concurrency`` ongoing requests per replica; it adds
      replicas after demand held for ``panic_window_s``, removes them after
      ``stable_window_s``, and the last one after ``idle_grace_s``.
    - autoscaler ``modelyard``: ``num_replicas`` = the count our policy decided (the
      target's min, at least 1, until it decides). Serve refuses ``num_replicas=0``, so
      zero becomes Serve's scale-from-zero at most one replica: idle it stays at zero,
      and a request wakes one replica up, which our policy then takes over.
    """
    config = deployment.config
    autoscaler = deployment.backend.resolved(config.min_replicas).autoscaler
    if autoscaler == "serve":
        low = max(0, target.min_replicas)
        high = max(1, target.max_replicas, low)
        auto: dict[str, Any] = {
            "min_replicas": low,
            "max_replicas": high,
            "initial_replicas": min(max(low, 1), high),
            "target_ongoing_requests": config.target_concurrency,
            "upscale_delay_s": config.panic_window_s,
            "downscale_delay_s": config.stable_window_s,
        }
        if low == 0:
            auto["downscale_to_zero_delay_s"] = config.idle_grace_s
        return {"autoscaling_config": auto}
    wanted = target.replicas if target.replicas is not None else max(1, target.min_replicas)
    if wanted <= 0:
        return {
            "autoscaling_config": {
                "min_replicas": 0,
                "max_replicas": 1,
                "initial_replicas": 0,
                "target_ongoing_requests": config.target_concurrency,
                "upscale_delay_s": 0.0,
                "downscale_delay_s": config.idle_grace_s,
                "downscale_to_zero_delay_s": config.idle_grace_s,
            }
        }
    return {"num_replicas": wanted}


def revision_spec(
    target: RevisionTarget,
    *,
    package_key: str,
    kv_namespace: str,
    model_name: str,
    model_version: int,
    expected_files: Mapping[str, str],
) -> dict[str, Any]:
    """What a revision replica needs to load its model (the constructor argument)."""
    s = target.revision.settings
    return {
        "revision": target.revision.number,
        "package_key": package_key,
        "kv_namespace": kv_namespace,
        "model_name": model_name,
        "model_version": str(model_version),
        "expected_files": dict(sorted(expected_files.items())),
        "runtime": {
            "batching": s.batching,
            "max_batch_size": s.max_batch_size,
            "max_latency_ms": s.max_latency_ms,
            "threads": 1,
        },
        "max_body_bytes": 8 * 1024 * 1024,
    }


def code_version(*parts: Any) -> str:
    """A stable version for a Serve deployment: the same parts, the same version.

    Serve restarts a deployment's replicas only when its version (or its actor options)
    changes; replica counts, autoscaling and ``user_config`` are applied in place. So a
    revision keeps its replicas across applies for its whole life.
    """
    encoded = json.dumps(parts, sort_keys=True, default=_jsonable).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def _jsonable(value: object) -> object:
    if isinstance(value, RuntimeSettings):
        return asdict(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def package_key(app: str, expected_files: Mapping[str, str]) -> str:
    """Where a package is kept in Ray's GCS key-value store, by its files' digests."""
    listing = json.dumps(sorted(expected_files.items())).encode()
    return f"packages/{app}/{hashlib.sha256(listing).hexdigest()}"


def failure_line(message: str) -> str:
    """The line of a Serve status message that says why (an error line, else the first)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return ""
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line[:500]
    return lines[0][:500]


# --- Serve status -> Observed ----------------------------------------------------------


def observe(details: Mapping[str, Any], app: str, endpoint: str | None) -> Observed:
    """What runs for one application, from the Serve controller's instance details
    (``ServeInstanceDetails`` as a dict).

    ``rolled_out`` is judged against the last applied state as Serve itself keeps it:
    the ingress's routes. It holds when the application is RUNNING, the ingress and
    every routed revision deployment are HEALTHY with exactly their target count of
    replicas RUNNING and none starting or stopping, and no other revision is left.
    A revision deployment that failed to deploy appears as one ``failed`` replica
    carrying Serve's reason, so the controller can fail the revision.
    """
    application = (details.get("applications") or {}).get(app)
    if not application:
        return Observed((), False, None, f"application {app} is not deployed")
    deployments: Mapping[str, Any] = application.get("deployments") or {}
    ingress = deployments.get(INGRESS) or {}
    user_config = (ingress.get("deployment_config") or {}).get("user_config") or {}
    routed = {str(row[0]) for row in user_config.get(ROUTES_KEY, [])}
    replicas: list[ObservedReplica] = []
    problems: list[str] = []
    settled = _text(application.get("status")) == "RUNNING" and bool(ingress)
    settled = settled and _settled(ingress)
    if ingress and _text(ingress.get("status")) != "HEALTHY":
        reason = failure_line(str(ingress.get("message") or ""))
        status = _text(ingress.get("status")).lower()
        problems.append(f"{INGRESS} {status}" + (f": {reason}" if reason else ""))
    for name, info in sorted(deployments.items()):
        number = revision_number(name)
        if number is None:
            continue
        status = _text(info.get("status"))
        message = str(info.get("message") or "")
        for replica in info.get("replicas") or []:
            state = _REPLICA_STATES.get(_text(replica.get("state")))
            if state is None:
                continue
            started = replica.get("start_time_s")
            replicas.append(
                ObservedReplica(
                    id=str(replica.get("replica_id", "")),
                    revision=number,
                    state=state,
                    node=str(replica.get("node_id") or ""),
                    started_at_ms=int(started * 1000) if started else None,
                )
            )
        if status == "DEPLOY_FAILED":
            replicas.append(
                ObservedReplica(
                    id=f"{app}/{name}/failed",
                    revision=number,
                    state="failed",
                    reason=failure_line(message) or "Serve could not deploy it",
                )
            )
        if status != "HEALTHY":
            reason = failure_line(message)
            problems.append(f"{name} {status.lower()}" + (f": {reason}" if reason else ""))
        settled = settled and name in routed and _settled(info)
    settled = settled and routed <= set(deployments)
    if not settled and not problems:
        problems.append(f"application {app} {_text(application.get('status')).lower()}")
    return Observed(tuple(replicas), settled, endpoint, "; ".join(problems))


def _text(value: object) -> str:
    """A status as its name: Serve's details hold str enums (``DeploymentStatus.HEALTHY``
    prints as that, its value is ``HEALTHY``)."""
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _settled(info: Mapping[str, Any]) -> bool:
    if _text(info.get("status")) != "HEALTHY":
        return False
    states = [_text(r.get("state")) for r in info.get("replicas") or []]
    running = sum(1 for s in states if s == "RUNNING")
    target = info.get("target_num_replicas")
    return running == len(states) and (target is None or running == int(target))


# --- the load signal: ingress reports -> cumulative counters per revision ---------------


def ingress_actors(details: Mapping[str, Any], app: str) -> list[tuple[str, str]]:
    """``(replica id, actor name)`` of the application's running ingress replicas."""
    application = (details.get("applications") or {}).get(app) or {}
    ingress = (application.get("deployments") or {}).get(INGRESS) or {}
    return [
        (str(r.get("replica_id", "")), str(r["actor_name"]))
        for r in ingress.get("replicas") or []
        if _text(r.get("state")) == "RUNNING" and r.get("actor_name")
    ]


def routed_revisions(details: Mapping[str, Any], app: str) -> list[int]:
    """The revision numbers in the ingress's routes (the last applied state)."""
    application = (details.get("applications") or {}).get(app) or {}
    ingress = (application.get("deployments") or {}).get(INGRESS) or {}
    user_config = (ingress.get("deployment_config") or {}).get("user_config") or {}
    numbers = (revision_number(str(row[0])) for row in user_config.get(ROUTES_KEY, []))
    return sorted({n for n in numbers if n is not None})


def parse_report(raw: Mapping[str, Any]) -> dict[int, RevisionCounters]:
    """One ingress replica's report (``{"now_s": …, "revisions": {"<n>": counters}}``,
    each as the gateway's stats API writes them) as counters by revision number."""
    now_s = float(raw.get("now_s", 0.0))
    return {
        int(n): RevisionCounters.of(now_s, counters)
        for n, counters in dict(raw.get("revisions") or {}).items()
    }


@dataclass(frozen=True)
class LoadBook:
    """What :func:`accumulate` carries from one read of an application's ingress to the
    next.

    Attributes:
        last: each ingress replica's last report (by Serve replica id).
        totals: the counters summed over every report so far, by revision; they only grow.
    """

    last: Mapping[str, Mapping[int, RevisionCounters]] = field(default_factory=dict)
    totals: Mapping[int, RevisionCounters] = field(default_factory=dict)


def accumulate(
    book: LoadBook,
    reports: Mapping[str, Mapping[int, RevisionCounters]],
    now_s: float,
    alive: Set[str] = frozenset(),
) -> LoadBook:
    """Add what each ingress replica counted since its last report to the totals.

    A plain sum of the replicas' counters would drop when one replica restarts (its
    counters start again from zero) and would then read, downstream, as a restart of the
    whole signal. Here each replica's report is diffed against its own last one; a
    replica seen for the first time, or whose counters went down (it restarted),
    contributes all it counted. Requests in flight are not cumulative: they are the sum
    of this read's reports. A replica that did not answer this time keeps its last
    report while it is in ``alive`` (it is diffed against it when it answers again).

    Args:
        book: the state after the previous read.
        reports: this read's reports, by ingress replica id.
        now_s: the backend's clock: every total is stamped with it.
        alive: ids of the ingress replicas Serve still runs.

    Returns:
        The new state; its ``totals`` cover every revision reported now or before.
    """
    sums: dict[int, RevisionCounters] = dict(book.totals)
    in_flight: dict[int, int] = {}
    queued: dict[int, int] = {}
    for replica, report in reports.items():
        before = book.last.get(replica, {})
        for n, cur in report.items():
            prev = before.get(n)
            delta = cur if prev is None or _went_down(prev, cur) else _minus(cur, prev)
            sums[n] = _plus(sums.get(n), delta)
            in_flight[n] = in_flight.get(n, 0) + cur.in_flight
            queued[n] = queued.get(n, 0) + cur.queued
    totals = {
        n: _stamped(c, now_s, in_flight.get(n, 0), queued.get(n, 0))
        for n, c in sorted(sums.items())
    }
    last = {r: v for r, v in book.last.items() if r in alive}
    last.update(reports)
    return LoadBook(last, totals)


def load_of(book: LoadBook, revisions: Sequence[int], now_s: float) -> dict[int, RevisionCounters]:
    """``Observed.load``: the totals of ``revisions`` (zeros for one no request reached)."""
    return {n: book.totals.get(n) or RevisionCounters(now_s=now_s) for n in revisions}


_CUMULATIVE_INTS = ("arrivals", "completions", "service_count", "errors")
_CUMULATIVE_FLOATS = ("service_s_sum", "service_sq_s2_sum", "load_area")


def _went_down(prev: RevisionCounters, cur: RevisionCounters) -> bool:
    fields = (*_CUMULATIVE_INTS, *_CUMULATIVE_FLOATS)
    return any(getattr(cur, f) < getattr(prev, f) for f in fields)


def _minus(cur: RevisionCounters, prev: RevisionCounters) -> RevisionCounters:
    values: dict[str, Any] = {f: getattr(cur, f) - getattr(prev, f) for f in _CUMULATIVE_INTS}
    values.update({f: getattr(cur, f) - getattr(prev, f) for f in _CUMULATIVE_FLOATS})
    buckets = cur.latency_buckets
    if len(prev.latency_buckets) == len(buckets):
        buckets = tuple(max(0, c - p) for c, p in zip(buckets, prev.latency_buckets, strict=True))
    return RevisionCounters(now_s=cur.now_s, latency_buckets=buckets, **values)


def _plus(total: RevisionCounters | None, delta: RevisionCounters) -> RevisionCounters:
    if total is None:
        return delta
    values: dict[str, Any] = {f: getattr(total, f) + getattr(delta, f) for f in _CUMULATIVE_INTS}
    values.update({f: getattr(total, f) + getattr(delta, f) for f in _CUMULATIVE_FLOATS})
    a, b = total.latency_buckets, delta.latency_buckets
    if len(a) == len(b):
        buckets = tuple(x + y for x, y in zip(a, b, strict=True))
    else:  # one side has no histogram yet
        buckets = a if len(a) > len(b) else b
    return RevisionCounters(now_s=delta.now_s, latency_buckets=buckets, **values)


def _stamped(c: RevisionCounters, now_s: float, in_flight: int, queued: int) -> RevisionCounters:
    return RevisionCounters(
        now_s=now_s,
        in_flight=in_flight,
        queued=queued,
        arrivals=c.arrivals,
        completions=c.completions,
        service_count=c.service_count,
        errors=c.errors,
        service_s_sum=c.service_s_sum,
        service_sq_s2_sum=c.service_sq_s2_sum,
        load_area=c.load_area,
        latency_buckets=c.latency_buckets,
    )
