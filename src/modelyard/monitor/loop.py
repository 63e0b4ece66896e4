"""The monitor loop: a thread in ``modelyard server`` beside the deployment controller.

Every ``interval_s`` (10 s by default) it

1. collects replicas' prediction-log spool files into segments (:mod:`._logstore`);
2. samples each deployment's live metrics from the gateway's counters (:mod:`._live`)
   and stores the sample; for the cost ledger, adds its exact request count to the
   deployment's minute bucket and reads each local replica's CPU time and memory
   (:mod:`modelyard.cost.usage`);
3. recomputes drift for deployments whose ``drift_interval_s`` has passed and that
   logged enough rows;
4. evaluates every alert rule on its metric's newest value (:func:`._alerting.step`,
   with the rule's hysteresis), stores the new state with the history lines explaining
   it, and hands firing/resolved transitions that no silence covers to the
   :class:`~modelyard.notify.Dispatcher` (webhook and registered action);
5. keeps the prediction log within its retention, live samples for 7 days, replica
   usage for 8 days and traffic buckets for 400 days.

A failure in one deployment's step is logged and recorded, never stops the loop or the
server. Every notification attempt is written to the audit log and the alert history.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.core.clock import Clock, SystemClock
from modelyard.core.cost_facts import TrafficSample
from modelyard.core.deployments import Deployment, Replica
from modelyard.core.errors import ModelyardError
from modelyard.core.monitoring import AlertRuleRecord, MonitorSample
from modelyard.cost.usage import UsageSampler, traffic_sample
from modelyard.deploy.signals import GatewaySnapshot
from modelyard.monitor._alerting import AlertState, Silence, Transition, silenced, step
from modelyard.monitor._live import live_values
from modelyard.monitor._notification import alert_notification
from modelyard.monitor.rules import AlertRule, parse_rule
from modelyard.monitor.service import MonitorService
from modelyard.notify import (
    DeliveryResult,
    Dispatcher,
    Notification,
    Notifier,
    NotifierPool,
    NotifyingLoop,
    attempt_record,
    describe_attempt,
)
from modelyard.serving.predlog import COUNTERS_SUFFIX, spool_root
from modelyard.store import MetadataStore

logger = logging.getLogger("modelyard.monitor")

SAMPLE_RETENTION_S = 7 * 86400
USAGE_RETENTION_S = 8 * 86400
TRAFFIC_RETENTION_S = 400 * 86400
RETENTION_EVERY_S = 300.0
QUALITY_EVERY_S = 60.0
SYSTEM_ACTOR = "system:monitor"


@dataclass
class _DeploymentState:
    last_drift_s: float = -1e18
    drift_error: str = ""
    quality: dict[str, float] = field(default_factory=dict)
    quality_at_s: float = -1e18
    dropped_seen: dict[str, int] = field(default_factory=dict)


class MonitorLoop(NotifyingLoop):
    """Samples, drift, alert evaluation and notifications for every live deployment.

    Args:
        store: The metadata store.
        service: Monitoring operations (drift, quality, the log store).
        home: ``MODELYARD_HOME`` (the replicas' spool).
        stats: Reads the gateway's counters (None when it cannot be read).
        clock: Wall-clock time for samples, rules and silences.
        interval_s: Time between passes.
        dispatcher: Delivers notifications; one with default retries when None.
        usage: Reads replicas' CPU and memory (``/proc`` on Linux when None).
    """

    name = "monitor-loop"

    def __init__(
        self,
        store: MetadataStore,
        service: MonitorService,
        home: Path,
        stats: Callable[[], GatewaySnapshot | None],
        *,
        clock: Clock | None = None,
        interval_s: float = 10.0,
        dispatcher: Dispatcher | None = None,
        usage: UsageSampler | None = None,
    ) -> None:
        self._store = store
        self._repo = store.monitoring
        self._service = service
        self._spool = spool_root(home)
        self._stats = stats
        self._clock: Clock = clock or SystemClock()
        super().__init__(interval_s, dispatcher, self._delivered)
        self._prev: GatewaySnapshot | None = None
        self._usage = usage or UsageSampler()
        self._states: dict[int, _DeploymentState] = {}
        self._targets = NotifierPool()
        self._rule_of: dict[str, tuple[int, int, str, str]] = {}
        self._last_retention_s = -1e18

    # ---- one pass -----------------------------------------------------------------

    def tick(self) -> None:
        """One pass over every live deployment."""
        now = self._clock.now()
        try:
            self._service.logs.collect()
        except Exception:
            logger.exception("collecting prediction logs failed")
        deployments = self._store.deployments.list_all(include_deleting=False)
        snapshot = self._stats()
        samples = []
        traffic: list[TrafficSample] = []
        active: list[Replica] = []
        values_of: dict[int, dict[str, float | None]] = {}
        for dep in deployments:
            state = self._states.setdefault(dep.id, _DeploymentState())
            dep_replicas = self._store.deployments.replicas(dep.id)
            active.extend(dep_replicas)
            replicas = len([r for r in dep_replicas if r.state == "ready"])
            values = live_values(
                self._prev,
                snapshot,
                dep.name,
                replicas=replicas,
                log_dropped=self._dropped(dep.id, state),
            )
            values.update(self._quality(dep, state, now))
            values_of[dep.id] = values
            if snapshot is not None and self._prev is not None:
                interval_s = snapshot.now_s - self._prev.now_s
                samples.append(MonitorSample(dep.id, int(now * 1000), interval_s, values))
                counted = traffic_sample(dep.id, int(now * 1000), interval_s, values)
                if counted is not None:
                    traffic.append(counted)
        if snapshot is not None:
            self._prev = snapshot
        self._repo.add_samples(samples)
        self._record_cost(traffic, active, now)
        rules = self._repo.rules()
        by_deployment: dict[int, list[AlertRuleRecord]] = {}
        for record in rules:
            by_deployment.setdefault(record.deployment_id, []).append(record)
        for dep in deployments:
            if self._stop.is_set():
                return
            try:
                self._drift_if_due(dep, now, by_deployment.get(dep.id, []))
                self._evaluate(dep, now, values_of.get(dep.id, {}), by_deployment.get(dep.id, []))
            except Exception:
                logger.exception("monitoring %s failed", dep.name)
        if now - self._last_retention_s >= RETENTION_EVERY_S:
            self._last_retention_s = now
            self._retention(deployments, now)

    def _record_cost(
        self, traffic: list[TrafficSample], replicas: list[Replica], now: float
    ) -> None:
        """The cost ledger's traffic buckets and replica usage (a failure is logged)."""
        try:
            self._store.cost.add_traffic(traffic)
            usage = self._usage.sample(replicas, int(now * 1000), self._clock.monotonic())
            self._store.cost.add_usage(usage)
        except Exception:
            logger.exception("recording traffic and replica usage failed")

    def _dropped(self, deployment_id: int, state: _DeploymentState) -> int | None:
        """Prediction-log rows dropped (by the byte budget) since the last pass."""
        root = self._spool / str(deployment_id)
        if not root.is_dir():
            return None
        total = 0
        for path in root.glob(f"*/*{COUNTERS_SUFFIX}"):
            try:
                doc = json.loads(path.read_text())
                dropped = int(doc.get("dropped", 0))
                key = f"{path}:{doc.get('pid', 0)}"
            except (OSError, ValueError, TypeError):
                continue
            seen = state.dropped_seen.get(key, 0)
            total += dropped - seen if dropped >= seen else dropped
            state.dropped_seen[key] = dropped
        return total

    def _drift_if_due(self, dep: Deployment, now: float, rules: list[AlertRuleRecord]) -> None:
        config = self._repo.config(dep.id)
        state = self._states[dep.id]
        wants = config.drift_interval_s > 0
        if not wants or now - state.last_drift_s < config.drift_interval_s:
            return
        state.last_drift_s = now
        since_ms = int((now - config.drift_window_s) * 1000)
        spooled = any(True for _ in self._spool.glob(f"{dep.id}/*/*.parquet"))
        if not spooled and not self._repo.segments(dep.id, since_ms=since_ms, source="replica"):
            return
        try:
            self._service.compute_drift(dep)
            state.drift_error = ""
        except ModelyardError as exc:
            if exc.message != state.drift_error:
                state.drift_error = exc.message
                self._repo.add_event(dep.id, None, "drift", f"drift not computed: {exc.message}")

    # ---- rules --------------------------------------------------------------------

    def _metric(
        self, dep: Deployment, rule: AlertRule, values: dict[str, float | None], now: float
    ) -> float | None:
        metric = rule.metric
        if metric in values:
            return values[metric]
        if metric in ("drift_share", "drift", "drifted"):
            config = self._repo.config(dep.id)
            drift = self._repo.latest_drift(dep.id)
            stale_s = max(2 * config.drift_interval_s, 2 * self.interval_s, 60.0)
            if drift is None or now - drift.time_ms / 1000 > stale_s:
                return None
            if metric == "drift_share":
                return drift.drift_share
            for feature in drift.report.get("features", []):
                if feature.get("column") == rule.feature:
                    if metric == "drifted":
                        return 1.0 if feature.get("drifted") else 0.0
                    stat = feature.get("statistic")
                    return float(stat) if stat is not None else None
            return None
        return None

    def _quality(self, dep: Deployment, state: _DeploymentState, now: float) -> dict[str, float]:
        """Accuracy / AUC of the newest hour of labelled predictions (refreshed each minute)."""
        if now - state.quality_at_s >= QUALITY_EVERY_S:
            state.quality_at_s = now
            state.quality = {}
            if self._repo.has_feedback(dep.id):
                try:
                    buckets = self._service.compute_quality(dep, bucket_s=3600)
                except ModelyardError as exc:
                    logger.warning("quality of %s: %s", dep.name, exc.message)
                    buckets = []
                latest = buckets[-1] if buckets else {}
                state.quality = {
                    k: float(v)
                    for k, v in latest.items()
                    if k in ("accuracy", "auc") and v is not None
                }
        return {k: v for k, v in state.quality.items() if v is not None}

    def _evaluate(
        self,
        dep: Deployment,
        now: float,
        values: dict[str, float | None],
        rules: list[AlertRuleRecord],
    ) -> None:
        if not rules:
            return
        silences = [
            Silence(
                dep.name,
                s.rule or None,
                s.starts_ms / 1000,
                s.ends_ms / 1000,
                s.comment,
                s.created_by,
            )
            for s in self._repo.silences(dep.id, active_at_ms=int(now * 1000))
        ]
        for record in rules:
            if not record.enabled:
                continue
            rule = parse_rule(record.rule)
            value = self._metric(dep, rule, values, now)
            state = AlertState.from_json(record.state) if record.state else AlertState()
            new_state, transition = step(rule, state, value, now, hysteresis=record.hysteresis)
            events: list[tuple[str, str, dict[str, Any]]] = []
            if transition is not None:
                events.append(self._transition_event(dep, transition))
            self._repo.save_state(record.id, new_state.to_json(), events)
            if transition is not None and transition.notify:
                muted = silenced(silences, dep.name, record.rule, now)
                if muted is not None:
                    self._repo.add_event(
                        dep.id,
                        record.id,
                        "silenced",
                        f"{transition.to_state} not notified: silenced until "
                        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(muted.ends_s))} UTC",
                    )
                    continue
                self._notify(dep, record, transition)

    def _transition_event(
        self, dep: Deployment, transition: Transition
    ) -> tuple[str, str, dict[str, Any]]:
        value = "no data" if transition.value is None else f"{transition.value:.6g}"
        message = f"{transition.rule}: {transition.from_state} -> {transition.to_state} ({value})"
        return transition.to_state, message, transition.to_json()

    # ---- notifications ------------------------------------------------------------

    def _notify(self, dep: Deployment, record: AlertRuleRecord, transition: Transition) -> None:
        notification = alert_notification(
            transition,
            project=dep.project,
            deployment=dep.name,
            labels={"rule_id": str(record.id)},
        )
        self._rule_of[notification.id] = (dep.id, record.id, dep.project, dep.name)
        targets: list[Notifier] = []
        try:
            if record.webhook_url:
                secret = self._repo.webhook_secret(record.id)
                targets.append(self._targets.webhook(record.webhook_url, secret))
            if record.action:
                targets.append(self._targets.action(self._repo.action(dep.project, record.action)))
        except ModelyardError as exc:
            self._repo.add_event(
                dep.id, record.id, "notify_failed", f"cannot notify: {exc.message}"
            )
        for target in targets:
            self._dispatcher.submit(target, notification)

    def _delivered(
        self,
        target: Notifier,
        notification: Notification,
        attempt: int,
        result: DeliveryResult,
        final: bool,
    ) -> None:
        """Every attempt goes to the alert history and the audit log."""
        dep_id, rule_id, project, name = self._rule_of.get(
            notification.id, (0, 0, notification.project, notification.deployment)
        )
        outcome = "ok" if result.ok else "error"
        what = f"{notification.state} {notification.rule} -> {target.target}"
        message = describe_attempt(what, attempt, result, final)
        try:
            if dep_id:
                self._repo.add_event(
                    dep_id,
                    rule_id or None,
                    "notify" if result.ok else "notify_failed",
                    message,
                    attempt_record(target, notification, attempt, result, final),
                )
            self._store.auth.append_audit(
                actor=SYSTEM_ACTOR,
                token_id=None,
                action="alert.notify",
                project=project,
                target=f"deployment:{name} rule:{notification.rule} {target.target}",
                outcome=outcome,
                status_code=result.code or 0,
                detail=json.dumps(
                    {
                        "attempt": attempt,
                        "final": final,
                        "state": notification.state,
                        "error": result.error,
                    }
                ),
            )
        except Exception:
            logger.exception("could not record a notification attempt")
        if final:
            self._rule_of.pop(notification.id, None)

    # ---- retention ----------------------------------------------------------------

    def _retention(self, deployments: list[Deployment], now: float) -> None:
        for dep in deployments:
            try:
                self._service.logs.enforce_retention(dep.id, self._repo.config(dep.id))
            except Exception:
                logger.exception("prediction-log retention of %s failed", dep.name)
        self._repo.prune_samples(int((now - SAMPLE_RETENTION_S) * 1000))
        self._store.cost.prune(
            usage_before_ms=int((now - USAGE_RETENTION_S) * 1000),
            traffic_before_ms=int((now - TRAFFIC_RETENTION_S) * 1000),
        )
