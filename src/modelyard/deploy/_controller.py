"""The deployment controller: reconciles replica processes towards the desired state.

One thread inside ``modelyard server``. Every pass (``loop_s``, faster while a replica
is starting, at once when the gateway holds a request for a revision without replicas):

1. reads desired state from the store and the gateway's counters;
2. checks replicas: starting → ready (health probe), dead → failed/stopped with the
   reason from their log, draining → stopped once the gateway has no request on them;
3. marks pending revisions ready or failed, advances rollouts (:func:`advance`);
4. asks each serving revision's autoscaler (:mod:`modelyard.autoscale`, the same policy
   code the trace simulator replays) for its replica count, within the global cap;
5. starts or drains replicas to match, and pushes the route table to the gateway.

Every decision that changes something, and a heartbeat of the others, is an event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from modelyard.autoscale import AnyPolicy, AutoscaleController, Observation
from modelyard.core.clock import Clock, SystemClock
from modelyard.core.deployments import Deployment, EventDraft, Replica, Revision
from modelyard.core.errors import ModelyardError
from modelyard.cost._quota import ReplicaSize, cap_scale_up, quota_of, usage_of
from modelyard.deploy._gateway_link import GatewayLink
from modelyard.deploy._policy import deployment_policy
from modelyard.deploy._processes import pid_alive, probe_ready, stop_replica
from modelyard.deploy._replicas import ReplicaFactory, free_port, new_replica_id
from modelyard.deploy._rollout import RolloutView, advance
from modelyard.deploy._routes import build_route_table
from modelyard.deploy._signals import GatewaySnapshot, RevisionCounters, observation, window_stats
from modelyard.store import DeploymentChange, MetadataStore

logger = logging.getLogger("modelyard.deploy")

HEARTBEAT_EVENT_S = 60.0
ROUTES_REFRESH_S = 5.0
QUOTA_EVENT_S = 30.0
SHADOW_EVENT_S = 10.0
# Passes without gateway stats (at least 0.25 s apart) before its process is checked.
GATEWAY_MISSES_BEFORE_RESTART = 8


@dataclass
class _Scaler:
    """One serving revision's autoscaler and what it last saw and said."""

    controller: AutoscaleController[Any]
    fingerprint: str
    observation: Observation | None = None
    counters: RevisionCounters | None = None
    last_tick_s: float = -1e18
    desired: int = 0
    recorded_desired: int = -1
    recorded_at_s: float = -1e18


@dataclass
class _Drain:
    since_s: float
    routes_version: int


@dataclass
class _Pass:
    """What one reconcile pass of one deployment collects."""

    events: list[EventDraft] = field(default_factory=list)
    failed_revisions: dict[int, str] = field(default_factory=dict)


class DeploymentController:
    """Reconciles every deployment's replicas; see the module docstring.

    Args:
        store: the metadata store.
        factory: starts replica processes.
        gateway: the gateway link, or None to run without one (tests of the loop).
        clock: time source (``now`` for records, ``monotonic`` for decisions).
        max_total_replicas: the global cap on replicas (``MODELYARD_MAX_REPLICAS``).
        loop_s: the pass interval when nothing is starting.
        start_timeout_s: a replica not ready by then is killed and marked failed.
    """

    def __init__(
        self,
        store: MetadataStore,
        factory: ReplicaFactory,
        gateway: GatewayLink | None,
        *,
        clock: Clock | None = None,
        max_total_replicas: int = 4,
        loop_s: float = 0.25,
        start_timeout_s: float = 120.0,
    ) -> None:
        self._repo = store.deployments
        self._budgets = store.budgets
        self._factory = factory
        self._gateway = gateway
        self._clock = clock or SystemClock()
        self._max_total = max_total_replicas
        self._loop_s = loop_s
        self._start_timeout_s = start_timeout_s
        self._scalers: dict[tuple[int, int], _Scaler] = {}
        self._windows: dict[tuple[int, int], RevisionCounters] = {}
        self._draining: dict[str, _Drain] = {}
        self._stopping: set[str] = set()
        self._quota_event_at: dict[tuple[int, int], float] = {}
        self._quota_capped: dict[tuple[int, int, bool], tuple[int, int, str | None]] = {}
        self._shadow_reported: dict[tuple[int, int], tuple[float, dict[str, int]]] = {}
        self._wakes: set[tuple[str, int]] = set()
        self._wake_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="replica-stop")
        self._routes_version = int(time.time() * 1000)
        self._pushed_table: list[Any] | None = None
        self._pushed_at_s = -1e18
        self._pushed_version = 0
        self._pushed_replicas: set[str] = set()
        self._gateway_routes_version = 0
        self._gateway_misses = 0
        self._starting = False

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Adopt live replicas, then run the loop in a thread."""
        self.adopt()
        if self._gateway is not None:
            self._gateway.watch_wakeups(self.wake, self._stop)
        self._thread = threading.Thread(target=self._run, name="deploy-controller", daemon=True)
        self._thread.start()

    def stop(self, *, stop_replicas: bool = True) -> None:
        """Stop the loop; with ``stop_replicas`` stop every replica (gracefully) too."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if stop_replicas:
            replicas = self._repo.replicas(active_only=True)
            list(self._pool.map(lambda r: self._stop_now(r, "server stopped"), replicas))
        self._pool.shutdown(wait=True)

    def wake(self, revisions: Iterable[tuple[str, int]]) -> None:
        """The gateway holds requests for these (deployment, revision): decide now."""
        with self._wake_lock:
            self._wakes.update(revisions)
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the loop must survive anything one pass hits
                logger.exception("deployment controller pass failed")
            self._wake.wait(0.02 if self._starting else self._loop_s)
            self._wake.clear()

    def adopt(self) -> None:
        """After a (re)start: keep replicas that are alive and healthy, forget the rest."""
        for r in self._repo.replicas(active_only=True):
            if pid_alive(r.pid) and probe_ready("127.0.0.1", r.port):
                if r.state == "starting":
                    self._repo.update_replica(r.id, state="ready", ready_at_ms=self._now_ms())
                logger.info("adopted replica %s (pid %d, port %d)", r.id, r.pid, r.port)
                continue
            self._repo.update_replica(
                r.id,
                state="stopped",
                stopped_at_ms=self._now_ms(),
                exit_reason="lost while the server was down",
            )
            self._repo.add_events(
                r.deployment_id,
                [EventDraft("replica", f"replica {r.id} was gone after a restart", r.revision)],
            )

    # --- one pass -------------------------------------------------------------------

    def run_once(self) -> None:
        """One reconcile pass over every deployment."""
        deployments = self._repo.list_all()
        by_dep: dict[int, list[Replica]] = defaultdict(list)
        for r in self._repo.replicas(active_only=True):
            by_dep[r.deployment_id].append(r)
        snapshot = self._gateway.stats() if self._gateway is not None else None
        if snapshot is not None:
            self._gateway_routes_version = snapshot.routes_version
            self._gateway_misses = 0
        elif self._gateway is not None:
            self._gateway_misses += 1
            if self._gateway_misses >= GATEWAY_MISSES_BEFORE_RESTART:
                self._gateway_misses = 0
                self._restart_gateway()
        with self._wake_lock:
            wakes, self._wakes = self._wakes, set()
        self._starting = False
        for dep in deployments:
            try:
                self._reconcile(dep, by_dep.get(dep.id, []), snapshot, wakes)
            except ModelyardError as exc:
                logger.warning("deployment %s: %s", dep.name, exc)
            except Exception:  # one deployment's bug must not stop the others
                logger.exception("reconciling deployment %s failed", dep.name)
        self._push_routes()

    def _reconcile(
        self,
        dep: Deployment,
        replicas: list[Replica],
        snapshot: GatewaySnapshot | None,
        wakes: set[tuple[str, int]],
    ) -> None:
        p = _Pass()
        replicas = self._check_replicas(dep, replicas, snapshot, p)
        dep = self._revision_states(dep, replicas, p)
        counters = self._counters(dep, snapshot)
        dep, pins = self._rollout(dep, replicas, counters, p)
        if dep.status == "deleting":
            desired = {rev.number: 0 for rev in dep.revisions}
        else:
            desired = self._desired(dep, replicas, counters, pins, wakes, p)
        self._apply(dep, replicas, desired, snapshot, p)
        self._shadow_report(dep, counters, p)
        self._repo.add_events(dep.id, p.events)
        if dep.status == "deleting" and not self._repo.replicas(dep.id, active_only=True):
            self._repo.add_events(dep.id, [EventDraft("deployment", "deleted: no replica left")])
            self._repo.purge(dep.id)
            for key in [k for k in self._scalers if k[0] == dep.id]:
                del self._scalers[key]

    def _restart_gateway(self) -> None:
        """A gateway that died is started again and given the whole route table."""
        if self._gateway is None:
            return
        try:
            restarted = self._gateway.ensure_running()
        except ModelyardError as exc:
            logger.error("could not restart the gateway: %s", exc)
            return
        if restarted:
            self._pushed_table = None  # push everything to the new process
            for dep in self._repo.list_all(include_deleting=False):
                self._repo.add_events(dep.id, [EventDraft(
                    "gateway", "the gateway process was gone and has been restarted"
                )])  # fmt: skip

    # --- replicas -------------------------------------------------------------------

    def _check_replicas(
        self,
        dep: Deployment,
        replicas: list[Replica],
        snapshot: GatewaySnapshot | None,
        p: _Pass,
    ) -> list[Replica]:
        live: list[Replica] = []
        now_ms = self._now_ms()
        for r in replicas:
            if r.id in self._stopping:
                live.append(r)
                continue
            alive = pid_alive(r.pid)
            if r.state == "starting":
                if not alive:
                    reason = self._factory.failure_reason(r)
                    self._mark(r, "failed", f"exited while starting: {reason}")
                    p.failed_revisions[r.revision] = reason
                    p.events.append(EventDraft("replica", f"replica {r.id} failed: {reason}",
                                               r.revision, {"replica": r.id}))  # fmt: skip
                    continue
                if probe_ready("127.0.0.1", r.port, timeout_s=0.2):
                    self._repo.update_replica(r.id, state="ready", ready_at_ms=now_ms)
                    took_s = (now_ms - r.started_at_ms) / 1000
                    p.events.append(EventDraft(
                        "replica", f"replica {r.id} ready in {took_s:.2f}s",
                        r.revision, {"replica": r.id, "start_s": took_s, "mode": r.mode,
                                     "standby": r.standby},
                    ))  # fmt: skip
                    r = _with_state(r, "ready", now_ms)
                elif now_ms - r.started_at_ms > self._start_timeout_s * 1000:
                    self._stop_async(r, f"not ready within {self._start_timeout_s:g}s")
                    p.failed_revisions[r.revision] = f"not ready within {self._start_timeout_s:g}s"
                    continue
                else:
                    self._starting = True
            elif not alive:
                reason = "exited unexpectedly" if r.state == "ready" else "exited while draining"
                self._mark(r, "failed" if r.state == "ready" else "stopped", reason)
                self._draining.pop(r.id, None)
                if r.state == "ready":
                    p.events.append(EventDraft("replica", f"replica {r.id} {reason}", r.revision,
                                               {"replica": r.id, "pid": r.pid}))  # fmt: skip
                continue
            elif r.state == "draining":
                self._maybe_stop_drained(dep, r, snapshot)
            live.append(r)
        return live

    def _maybe_stop_drained(
        self, dep: Deployment, r: Replica, snapshot: GatewaySnapshot | None
    ) -> None:
        drain = self._draining.setdefault(r.id, _Drain(self._mono(), self._routes_version))
        waited_s = self._mono() - drain.since_s
        # Unrouted: the last table pushed leaves it out, and the gateway has applied it.
        unrouted = self._gateway is None or (
            self._pushed_version > 0
            and r.id not in self._pushed_replicas
            and self._gateway_routes_version >= self._pushed_version
        )
        idle = snapshot is None or snapshot.replica_in_flight.get(r.id, 0) == 0
        if (unrouted and idle) or waited_s > dep.config.request_timeout_s + 5:
            self._stop_async(r, "scaled down")

    def _stop_async(self, r: Replica, reason: str) -> None:
        self._stopping.add(r.id)

        def done() -> None:
            try:
                self._stop_now(r, reason)
            finally:
                self._stopping.discard(r.id)
                self._draining.pop(r.id, None)

        self._pool.submit(done)

    def _stop_now(self, r: Replica, reason: str) -> None:
        graceful = stop_replica(r.pid, grace_s=30.0)
        state = "stopped" if r.state != "starting" or reason == "scaled down" else "failed"
        self._mark(r, state, reason if graceful else f"{reason} (killed after 30s)")

    def _mark(self, r: Replica, state: str, reason: str) -> None:
        self._repo.update_replica(
            r.id, state=state, stopped_at_ms=self._now_ms(), exit_reason=reason
        )

    # --- revisions and rollouts -----------------------------------------------------

    def _revision_states(self, dep: Deployment, replicas: list[Replica], p: _Pass) -> Deployment:
        states: dict[int, tuple[str, str]] = {}
        for rev in dep.revisions:
            if rev.state != "pending":
                continue
            if any(r.revision == rev.number and r.state == "ready" for r in replicas):
                states[rev.number] = ("ready", "")
                p.events.append(EventDraft("revision", f"revision {rev.number} is ready",
                                           rev.number))  # fmt: skip
            elif rev.number in p.failed_revisions:
                error = p.failed_revisions[rev.number]
                states[rev.number] = ("failed", error)
                p.events.append(EventDraft(
                    "revision", f"revision {rev.number} failed to load: {error}", rev.number
                ))  # fmt: skip
        if not states:
            return dep
        change = DeploymentChange(revision_states=states)
        failed = [n for n, (s, _) in states.items() if s == "failed"]
        if failed and dep.rollout is None and set(failed) & set(dep.weights):
            # A revision that never loaded keeps no traffic; the previous one takes it back.
            fallback = dep.previous_stable or next(
                (r.number for r in dep.revisions if r.state == "ready"), None
            )
            if fallback is not None:
                change.weights = {fallback: 100}
                change.stable_revision = fallback
        new, _ = self._repo.change(dep.id, change)
        return new

    def _counters(
        self, dep: Deployment, snapshot: GatewaySnapshot | None
    ) -> dict[int, RevisionCounters]:
        if snapshot is None:
            return {}
        return {
            rev.number: snapshot.revisions.get(
                (dep.name, rev.number), RevisionCounters(now_s=snapshot.now_s)
            )
            for rev in dep.revisions
        }

    def _rollout(
        self,
        dep: Deployment,
        replicas: list[Replica],
        counters: dict[int, RevisionCounters],
        p: _Pass,
    ) -> tuple[Deployment, dict[int, int]]:
        ro = dep.rollout
        if ro is None or not ro.active:
            return dep, {}
        target = dep.revision(ro.target)
        if target is None:
            return dep, {}

        def ready(n: int) -> int:
            return sum(1 for r in replicas if r.revision == n and r.state == "ready"
                       and not r.standby)  # fmt: skip

        view = RolloutView(
            now_ms=self._now_ms(),
            target_state=target.state,
            target_error=target.error,
            target_ready=ready(ro.target),
            stable_ready=ready(ro.stable),
            canary=window_stats(self._windows.get((dep.id, ro.target)), counters.get(ro.target)),
            stable=window_stats(self._windows.get((dep.id, ro.stable)), counters.get(ro.stable)),
        )
        step = advance(ro, view)
        if step.reset_window:
            for n in (ro.target, ro.stable):
                if n in counters:
                    self._windows[(dep.id, n)] = counters[n]
        if step.rollout == ro and step.weights is None and step.message is None:
            return dep, step.pins
        change = DeploymentChange(rollout=step.rollout, weights=step.weights)
        if step.promote:
            change.stable_revision = ro.target
            change.previous_stable = ro.stable
        if step.message is not None:
            data = {"canary": asdict(view.canary), "stable": asdict(view.stable),
                    "phase": step.rollout.phase, "weights": step.weights}  # fmt: skip
            change.events = [EventDraft("rollout", step.message, ro.target, data)]
        new, _ = self._repo.change(dep.id, change)
        return new, step.pins

    def _shadow_report(
        self, dep: Deployment, counters: dict[int, RevisionCounters], p: _Pass
    ) -> None:
        """Every ``SHADOW_EVENT_S``: how often each shadow revision agreed with the primary."""
        for number in dep.shadows:
            cur = counters.get(number)
            if cur is None:
                continue
            key = (dep.id, number)
            last_t, last = self._shadow_reported.get(key, (-1e18, {}))
            compared = cur.shadow.get("agreed", 0) + cur.shadow.get("disagreed", 0)
            before = last.get("agreed", 0) + last.get("disagreed", 0)
            if compared == before or self._mono() - last_t < SHADOW_EVENT_S:
                continue
            agreed = cur.shadow.get("agreed", 0) - last.get("agreed", 0)
            n = compared - before
            rate = agreed / n if n > 0 else 0.0
            data: dict[str, float] = {k: cur.shadow.get(k, 0) - last.get(k, 0) for k in
                    ("sent", "agreed", "disagreed", "failed", "dropped")}  # fmt: skip
            data["agreement_rate"] = round(rate, 4)
            p.events.append(EventDraft(
                "shadow", f"shadow agreed with the primary on {rate:.1%} of {n} compared "
                "responses", number, data,
            ))  # fmt: skip
            self._shadow_reported[key] = (self._mono(), dict(cur.shadow))

    # --- scaling --------------------------------------------------------------------

    def _desired(
        self,
        dep: Deployment,
        replicas: list[Replica],
        counters: dict[int, RevisionCounters],
        pins: dict[int, int],
        wakes: set[tuple[str, int]],
        p: _Pass,
    ) -> dict[int, int]:
        desired: dict[int, int] = {}
        for rev in dep.revisions:
            serving = rev.weight > 0 or rev.shadow_percent > 0
            if rev.state == "failed":
                desired[rev.number] = 0
            elif rev.number in pins:
                desired[rev.number] = pins[rev.number]
            elif serving:
                n = self._scale(dep, rev, replicas, counters, (dep.name, rev.number) in wakes, p)
                if rev.state == "pending":
                    # Keep the replica that proves the revision until the next decision.
                    n = self._scalers[(dep.id, rev.number)].desired = max(n, 1)
                desired[rev.number] = n
            elif rev.state == "pending":
                desired[rev.number] = 1  # start one replica to prove the revision loads
            else:
                desired[rev.number] = 0
            if not serving:
                self._scalers.pop((dep.id, rev.number), None)
        return desired

    def _scale(
        self,
        dep: Deployment,
        rev: Revision,
        replicas: list[Replica],
        counters: dict[int, RevisionCounters],
        woken: bool,
        p: _Pass,
    ) -> int:
        key = (dep.id, rev.number)
        fingerprint = dep.config.to_json()
        scaler = self._scalers.get(key)
        mine = [r for r in replicas if r.revision == rev.number and not r.standby]
        current = sum(1 for r in mine if r.state in ("starting", "ready"))
        if scaler is None or scaler.fingerprint != fingerprint:
            policy: AnyPolicy = deployment_policy(dep.config)
            scaler = _Scaler(
                AutoscaleController(
                    policy,
                    clock=self._clock,
                    observe=lambda: self._observed(key),
                    apply=lambda _n: None,
                    keep_events=1,
                ),
                fingerprint,
                desired=current,
            )
            self._scalers[key] = scaler
        now = self._mono()
        cur = counters.get(rev.number)
        if cur is None:  # no gateway counters (it is down or restarting): hold, within bounds
            scaler.desired = min(max(scaler.desired, dep.config.min_replicas),
                                 dep.config.max_replicas)  # fmt: skip
            return scaler.desired
        due = now - scaler.last_tick_s >= scaler.controller.interval_s
        if not (due or (woken and current == 0)):
            return scaler.desired
        ready = sum(1 for r in mine if r.state == "ready")
        scaler.observation = observation(scaler.counters, cur, replicas=current,
                                         ready_replicas=ready)  # fmt: skip
        scaler.counters = cur
        scaler.last_tick_s = now
        event = scaler.controller.tick()
        scaler.desired = event.to_replicas
        heartbeat = now - scaler.recorded_at_s >= HEARTBEAT_EVENT_S
        if event.changed or scaler.desired != scaler.recorded_desired or heartbeat:
            obs = event.sample.obs
            p.events.append(EventDraft(
                "scale",
                f"{event.from_replicas} -> {event.to_replicas}: {event.reason}",
                rev.number,
                {"desired": event.to_replicas, "actual": event.from_replicas,
                 "ready": obs.ready_replicas, "in_flight": obs.in_flight, "queued": obs.queued,
                 "mean_concurrency": round(obs.mean_concurrency, 3),
                 "arrivals": obs.arrivals, "window_s": round(event.sample.dt_s, 3),
                 "woken": woken},
            ))  # fmt: skip
            scaler.recorded_desired = scaler.desired
            scaler.recorded_at_s = now
        return scaler.desired

    def _observed(self, key: tuple[int, int]) -> Observation:
        obs = self._scalers[key].observation
        if obs is None:  # tick() is only called after the observation is set
            raise RuntimeError("no observation")
        return obs

    def _apply(
        self,
        dep: Deployment,
        replicas: list[Replica],
        desired: dict[int, int],
        snapshot: GatewaySnapshot | None,
        p: _Pass,
    ) -> None:
        for rev in dep.revisions:
            want = desired.get(rev.number, 0)
            mine = [r for r in replicas if r.revision == rev.number and r.id not in self._stopping]
            active = [r for r in mine if r.state in ("starting", "ready") and not r.standby]
            standby = [r for r in mine if r.standby and r.state in ("starting", "ready")]
            if len(active) < want:
                missing = want - len(active)
                for s in [s for s in standby if s.state == "ready"][:missing]:
                    self._repo.update_replica(s.id, standby=False)
                    p.events.append(EventDraft("replica", f"standby {s.id} promoted",
                                               rev.number, {"replica": s.id}))  # fmt: skip
                    standby.remove(s)
                    missing -= 1
                missing = self._within_quota(dep, rev, want - missing, want, p)
                for _ in range(missing):
                    if not self._launch(dep, rev, standby=False, p=p):
                        break
            elif len(active) > want:
                self._drain(dep, rev, active, len(active) - want, snapshot, p)
            keep_standby = (
                dep.config.prewarm
                and dep.status == "active"
                and rev.state == "ready"
                and (rev.weight > 0 or rev.shadow_percent > 0)
            )
            if keep_standby and not standby and self._within_quota(dep, rev, 0, 1, p, standby=True):
                self._launch(dep, rev, standby=True, p=p)
            elif not keep_standby:
                for s in standby:
                    self._stop_async(s, "standby no longer needed")

    def _within_quota(
        self,
        dep: Deployment,
        rev: Revision,
        current: int,
        want: int,
        p: _Pass,
        *,
        standby: bool = False,
    ) -> int:
        """How many of ``want - current`` new replicas the project's quota lets start
        (:func:`cap_scale_up`); a ``quota`` event each time the cap changes."""
        key = (dep.id, rev.number, standby)
        record = self._budgets.quota(dep.project)
        cap = None if record is None else cap_scale_up(
            quota_of(record), usage_of(self._budgets.usage(dep.project)),
            ReplicaSize.of(rev.settings), current=current, desired=want,
        )  # fmt: skip
        if cap is None or not cap.limited:
            self._quota_capped.pop(key, None)
            return want - current
        seen = (cap.wanted, cap.replicas, cap.limit)
        if self._quota_capped.get(key) != seen:
            self._quota_capped[key] = seen
            message = "standby not started: " + cap.message if standby else cap.message
            p.events.append(EventDraft("quota", message, rev.number, {
                "wanted": cap.wanted, "allowed": cap.replicas, "limit": cap.limit,
                "standby": standby}))  # fmt: skip
        return cap.replicas - current

    def _launch(self, dep: Deployment, rev: Revision, *, standby: bool, p: _Pass) -> bool:
        total = len(self._repo.replicas(active_only=True)) - len(self._stopping)
        if total >= self._max_total:
            key = (dep.id, rev.number)
            if self._mono() - self._quota_event_at.get(key, -1e18) >= QUOTA_EVENT_S:
                self._quota_event_at[key] = self._mono()
                p.events.append(EventDraft(
                    "quota", f"global replica limit {self._max_total} reached "
                    "(MODELYARD_MAX_REPLICAS); not starting another", rev.number,
                ))  # fmt: skip
            return False
        try:
            package = self._factory.package(dep.project, rev)
        except ModelyardError as exc:
            p.failed_revisions[rev.number] = str(exc)
            if rev.state == "pending":
                self._repo.change(dep.id, DeploymentChange(
                    revision_states={rev.number: ("failed", str(exc))},
                    events=[EventDraft("revision", f"revision {rev.number} failed: {exc}",
                                       rev.number)],
                ))  # fmt: skip
            return False
        rid = new_replica_id()
        port = free_port()
        started_ms = self._now_ms()
        try:
            pid, mode = self._factory.start(
                rid, package, rev, port, dep.config.launch, deployment=dep
            )
        except (OSError, ModelyardError, RuntimeError) as exc:
            p.events.append(EventDraft("replica", f"could not start a replica: {exc}",
                                       rev.number))  # fmt: skip
            return False
        self._repo.add_replica(Replica(
            id=rid, deployment_id=dep.id, revision=rev.number, pid=pid, port=port,
            state="starting", mode=mode, standby=standby, cpu=rev.settings.cpu,
            memory_mb=rev.settings.memory_mb, started_at_ms=started_ms, ready_at_ms=None,
            stopped_at_ms=None, exit_reason="", gpu=rev.settings.gpu,
        ))  # fmt: skip
        self._starting = True
        p.events.append(EventDraft(
            "replica", f"{'standby' if standby else 'replica'} {rid} starting on port {port}",
            rev.number, {"replica": rid, "pid": pid, "port": port, "mode": mode,
                         "launch_s": round(self._now_ms() / 1000 - started_ms / 1000, 4)},
        ))  # fmt: skip
        return True

    def _drain(
        self,
        dep: Deployment,
        rev: Revision,
        active: list[Replica],
        count: int,
        snapshot: GatewaySnapshot | None,
        p: _Pass,
    ) -> None:
        load = snapshot.replica_in_flight if snapshot is not None else {}
        # Replicas still starting go first (no request on them), then the least busy.
        order = sorted(active, key=lambda r: (r.state == "ready", load.get(r.id, 0)))
        for r in order[:count]:
            if r.state == "starting":
                self._stop_async(r, "scaled down")
                continue
            self._repo.update_replica(r.id, state="draining")
            self._draining[r.id] = _Drain(self._mono(), self._routes_version)
            p.events.append(EventDraft("replica", f"replica {r.id} draining", rev.number,
                                       {"replica": r.id}))  # fmt: skip

    # --- routes ---------------------------------------------------------------------

    def route_table(self) -> list[dict[str, Any]]:
        """The gateway's routes, from the store (see :func:`build_route_table`)."""
        routable = [r for r in self._repo.replicas(active_only=True)
                    if r.id not in self._stopping]  # fmt: skip
        return build_route_table(self._repo.list_all(include_deleting=False), routable)

    def _push_routes(self) -> None:
        if self._gateway is None:
            return
        table = self.route_table()
        now = self._mono()
        if table == self._pushed_table and now - self._pushed_at_s < ROUTES_REFRESH_S:
            return
        if table != self._pushed_table:
            self._routes_version += 1
        if self._gateway.push_routes({"version": self._routes_version, "deployments": table}):
            self._pushed_table = table
            self._pushed_at_s = now
            self._pushed_version = self._routes_version
            self._pushed_replicas = {
                r["id"] for d in table for rev in d["revisions"] for r in rev["replicas"]
            }

    # --- time -----------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock.now() * 1000)

    def _mono(self) -> float:
        return self._clock.monotonic()


def _with_state(r: Replica, state: str, ready_ms: int) -> Replica:
    return replace(r, state=state, ready_at_ms=ready_ms)  # type: ignore[arg-type]
