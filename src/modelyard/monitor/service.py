"""Monitoring operations as the API, SDK and CLI see them (permission-checked).

Reads what the monitor loop records (live samples, drift results, alert state), computes
drift on demand over the prediction log, takes ground-truth labels, and manages alert
rules, silences and actions. Invalid input is refused before anything is written.
"""

from __future__ import annotations

import io
import json
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.artifacts import BlobStore
from modelyard.auth import Principal
from modelyard.core.clock import Clock
from modelyard.core.deployments import Deployment
from modelyard.core.entities import Role
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.core.monitoring import (
    ActionRecord,
    AlertEvent,
    AlertRuleRecord,
    DriftRecord,
    FeedbackBatch,
    MonitorConfig,
    MonitorSample,
    SilenceRecord,
)
from modelyard.models.signature import ColumnSchema, Signature
from modelyard.monitor._logstore import LogStore
from modelyard.monitor._quality import quality_buckets, read_labels
from modelyard.monitor._reference import ReferenceLoader
from modelyard.monitor.rules import check_features, parse_duration, parse_rule
from modelyard.notify import check_webhook_url
from modelyard.store import MetadataStore

ACTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_RULES_PER_CALL = 50


@dataclass(frozen=True)
class AddedRules:
    """Rules just added, with the webhook secret (shown once) when a webhook was given."""

    rules: tuple[AlertRuleRecord, ...]
    webhook_secret: str | None


@dataclass(frozen=True)
class MonitorSummary:
    """One deployment's monitoring at a glance (None: nothing recorded yet)."""

    deployment: Deployment
    drift: DriftRecord | None
    rules: tuple[AlertRuleRecord, ...]
    sample: MonitorSample | None


class MonitorService:
    """Monitoring of deployments.

    Args:
        store: The metadata store.
        blobs: The artifact store (prediction-log segments, labels, reference data).
        home: ``MODELYARD_HOME`` (where replicas spool their prediction logs).
        clock: Wall-clock time.
    """

    def __init__(self, store: MetadataStore, blobs: BlobStore, home: Path, clock: Clock) -> None:
        self._store = store
        self._repo = store.monitoring
        self._blobs = blobs
        self._clock = clock
        self.logs = LogStore(
            home, store.monitoring, blobs, clock.now, deployment_ids=self._deployment_ids
        )
        self.references = ReferenceLoader(store, blobs)

    # ---- helpers ------------------------------------------------------------------

    def _deployment_ids(self) -> dict[str, int]:
        """Live deployments' ids by name (the gateway's request log is kept by name)."""
        return {d.name: d.id for d in self._store.deployments.list_all(include_deleting=False)}

    def deployment(self, caller: Principal, project: str, name: str, role: Role) -> Deployment:
        caller.require(project, role)
        return self._store.deployments.get(name, project)

    def model_of(self, dep: Deployment) -> tuple[str, int, tuple[str, ...]]:
        """The model version a deployment serves (its stable revision, else the one with
        the most traffic) and the feature names of its signature (empty: none)."""
        number = dep.stable_revision
        revision = dep.revision(number) if number is not None else None
        if revision is None:
            weights = dep.weights
            if not weights:
                raise NotFound(f"deployment {dep.name!r} serves no revision")
            revision = dep.revision(max(weights, key=lambda n: (weights[n], n)))
            assert revision is not None
        version = self._store.registry.get_version(
            dep.project, revision.model_name, revision.model_version
        )
        return revision.model_name, revision.model_version, _features(version.signature_json)

    # ---- settings -----------------------------------------------------------------

    def config(self, caller: Principal, project: str, name: str) -> MonitorConfig:
        dep = self.deployment(caller, project, name, Role.VIEWER)
        return self._repo.config(dep.id)

    def configure(
        self, caller: Principal, project: str, name: str, changes: Mapping[str, Any]
    ) -> MonitorConfig:
        """Change monitoring settings (new replicas log with the new ones)."""
        dep = self.deployment(caller, project, name, Role.EDITOR)
        config = self._repo.config(dep.id).merged(dict(changes))
        if config.stattest:
            from modelyard.monitor._drift import DriftOptions

            try:
                DriftOptions(stattest=config.stattest)
            except (ValueError, TypeError) as exc:
                raise InvalidInput(f"stattest: {exc}") from exc
        if config.reference:
            from modelyard.core.datasets import parse_ref

            parsed = parse_ref(config.reference)
            self._store.data.version_id(project, parsed.name, parsed.version)
        return self._repo.set_config(dep.id, config)

    # ---- drift --------------------------------------------------------------------

    def drift(
        self,
        caller: Principal,
        project: str,
        name: str,
        *,
        window_s: float | None = None,
        stattest: str | None = None,
        features: Sequence[str] | None = None,
    ) -> DriftRecord:
        """Compute drift now over the last ``window_s`` of logged traffic, and record it.

        Raises:
            InvalidInput: an unknown feature or test, too few logged rows.
            NotFound: no reference data (nothing in lineage and none configured).
        """
        dep = self.deployment(caller, project, name, Role.VIEWER)
        return self.compute_drift(dep, window_s=window_s, stattest=stattest, features=features)

    def compute_drift(
        self,
        dep: Deployment,
        *,
        window_s: float | None = None,
        stattest: str | None = None,
        features: Sequence[str] | None = None,
    ) -> DriftRecord:
        """:meth:`drift` without the permission check (the monitor loop calls it)."""
        from modelyard.monitor._drift import DriftOptions, compute_drift

        config = self._repo.config(dep.id)
        window = config.drift_window_s if window_s is None else window_s
        if not (math.isfinite(window) and 1 <= window <= 30 * 86400):
            raise InvalidInput(f"window must be between 1 s and 30 days, got {window} s")
        model, version, all_features = self.model_of(dep)
        if not all_features:
            raise InvalidInput(
                f"the model of {dep.name!r} has no column signature: drift needs named features"
            )
        chosen = tuple(features) if features else all_features
        unknown = sorted(set(chosen) - set(all_features))
        if unknown:
            raise InvalidInput(
                f"unknown feature(s) {unknown}: the model takes {list(all_features)}"
            )
        reference = self.references.for_model(
            dep.project, model, version, all_features, config.reference
        )
        self.logs.collect(dep.id, force=True)
        end_ms = int(self._clock.now() * 1000)
        start_ms = end_ms - int(window * 1000)
        current = self.logs.window(dep.id, start_ms, end_ms, chosen)
        rows = 0 if current is None else current.num_rows
        if rows < config.min_rows:
            raise InvalidInput(
                f"{dep.name!r} logged {rows} rows in the last {window:g} s; drift needs at "
                f"least {config.min_rows} (monitor config --min-rows)"
            )
        missing = [f for f in chosen if f not in current.schema.names]
        if missing:
            raise InvalidInput(f"the prediction log has no column(s) {missing}")
        test = stattest if stattest is not None else (config.stattest or None)
        try:
            options = DriftOptions(
                stattest=test,
                threshold=config.drift_threshold or None,
                drift_share=config.drift_share,
            )
        except (ValueError, TypeError) as exc:
            raise InvalidInput(str(exc)) from exc
        prepared = self.references.prepared(reference, chosen)
        report = compute_drift(prepared, current.select(list(chosen)), chosen, options)
        doc = report.to_json()
        doc["model"] = f"{model}/{version}"
        return self._repo.add_drift(
            dep.id,
            start_ms,
            end_ms,
            reference.ref,
            rows,
            report.drift_share,
            report.dataset_drift,
            doc,
        )

    def drift_history(
        self, caller: Principal, project: str, name: str, limit: int = 100
    ) -> list[DriftRecord]:
        dep = self.deployment(caller, project, name, Role.VIEWER)
        if not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be between 1 and 1000, got {limit}")
        return self._repo.drift_history(dep.id, limit=limit)

    # ---- the live view ------------------------------------------------------------

    def overview(self, caller: Principal, project: str) -> list[MonitorSummary]:
        """Every live deployment of ``project`` with its newest drift result, its alert
        rules (with their state) and its newest live sample: the web UI's overview.

        Raises:
            NotFound: no such project.
        """
        caller.require(project, Role.VIEWER)
        self._store.auth.get_project(project)
        return [
            MonitorSummary(
                dep,
                self._repo.latest_drift(dep.id),
                tuple(self._repo.rules(dep.id)),
                self._repo.latest_sample(dep.id),
            )
            for dep in self._store.deployments.list_all(project, include_deleting=False)
        ]

    def show(
        self, caller: Principal, project: str, name: str, minutes: float = 15
    ) -> dict[str, Any]:
        """Everything ``monitor show`` prints: live metrics, drift, alerts, log, quality."""
        dep = self.deployment(caller, project, name, Role.VIEWER)
        if not (math.isfinite(minutes) and 0 < minutes <= 7 * 1440):
            raise InvalidInput(f"minutes must be in (0, 10080], got {minutes}")
        now_ms = int(self._clock.now() * 1000)
        samples = self._repo.samples(dep.id, since_ms=now_ms - int(minutes * 60_000))
        replicas = self._store.deployments.replicas(dep.id, active_only=True)
        drift = self._repo.latest_drift(dep.id)
        segments = self._repo.segments(dep.id, source="replica")
        gateway_segments = self._repo.segments(dep.id, source="gateway")
        rules = self._repo.rules(dep.id)
        return {
            "deployment": dep.name,
            "project": dep.project,
            "time_ms": now_ms,
            "live": samples[-1].values if samples else None,
            "series": [{"time_ms": s.time_ms, **s.values} for s in samples],
            "replicas": [{"id": r.id, "revision": r.revision, "state": r.state} for r in replicas],
            "drift": None if drift is None else drift_json(drift),
            "alerts": [rule_json(r) for r in rules],
            "log": {
                "segments": len(segments),
                "rows": sum(s.rows for s in segments),
                "bytes": sum(s.size for s in segments),
                "newest_ms": max((s.last_ms for s in segments), default=None),
            },
            "gateway_log": {
                "segments": len(gateway_segments),
                "rows": sum(s.rows for s in gateway_segments),
                "bytes": sum(s.size for s in gateway_segments),
            },
            "config": json.loads(self._repo.config(dep.id).to_json()),
        }

    def samples(
        self, caller: Principal, project: str, name: str, minutes: float = 15
    ) -> list[MonitorSample]:
        """The live samples of the last ``minutes``, oldest first (the newest is "now")."""
        dep = self.deployment(caller, project, name, Role.VIEWER)
        if not (math.isfinite(minutes) and 0 < minutes <= 7 * 1440):
            raise InvalidInput(f"minutes must be in (0, 10080], got {minutes}")
        now_ms = int(self._clock.now() * 1000)
        return self._repo.samples(dep.id, since_ms=now_ms - int(minutes * 60_000))

    # ---- ground truth -------------------------------------------------------------

    def add_feedback(
        self, caller: Principal, project: str, name: str, data: bytes, content_type: str
    ) -> tuple[FeedbackBatch, dict[str, Any]]:
        """Store labels (``request_id``, ``label``, optional ``row``) and join them.

        Raises:
            InvalidInput: the file is not Parquet/CSV/JSON or lacks the columns.
        """
        import pyarrow.parquet as pq

        dep = self.deployment(caller, project, name, Role.EDITOR)
        labels = read_labels(data, content_type)
        sink = io.BytesIO()
        pq.write_table(labels, sink, compression="zstd")
        payload = sink.getvalue()
        info = self._blobs.put_bytes(payload)
        self.logs.collect(dep.id, force=True)
        joined = self._joined(dep, labels)
        matched = 0 if joined is None else joined.num_rows
        batch = self._repo.add_feedback(dep.id, labels.num_rows, matched, info.digest, len(payload))
        summary = quality_buckets(joined, bucket_s=0) if joined is not None else []
        return batch, {
            "rows": labels.num_rows,
            "matched": matched,
            "quality": summary[0] if summary else None,
        }

    def quality(
        self, caller: Principal, project: str, name: str, *, bucket_s: float = 3600
    ) -> list[dict[str, Any]]:
        """Accuracy / AUC (classification) or MAE / RMSE (regression) per time bucket."""
        dep = self.deployment(caller, project, name, Role.VIEWER)
        if not (math.isfinite(bucket_s) and 60 <= bucket_s <= 30 * 86400):
            raise InvalidInput(f"bucket must be between 60 s and 30 days, got {bucket_s} s")
        return self.compute_quality(dep, bucket_s=bucket_s)

    def compute_quality(self, dep: Deployment, *, bucket_s: float) -> list[dict[str, Any]]:
        labels = self._all_labels(dep)
        if labels is None:
            return []
        joined = self._joined(dep, labels)
        return [] if joined is None else quality_buckets(joined, bucket_s=bucket_s)

    def _all_labels(self, dep: Deployment) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        batches = self._repo.feedback(dep.id)
        if not batches:
            return None
        tables = [pq.read_table(io.BytesIO(self._blobs.read_bytes(b.digest))) for b in batches]
        return pa.concat_tables(tables, promote_options="permissive")

    def _joined(self, dep: Deployment, labels: Any) -> Any:
        """Logged predictions joined with labels on (request id, row); latest label wins."""
        segments = self._repo.segments(dep.id, source="replica")
        if not segments:
            return None
        log = self.logs.window(
            dep.id, segments[0].first_ms, segments[-1].last_ms + 1, ("_prediction",)
        )
        if log is None or "_prediction" not in log.schema.names:
            return None
        log = log.select(["_ts", "_request_id", "_row", "_prediction"])
        latest = labels.group_by(["request_id", "row"], use_threads=False).aggregate(
            [("label", "last")]
        )
        joined = log.join(
            latest.select(["request_id", "row", "label_last"]).rename_columns(
                ["request_id", "row", "label"]
            ),
            keys=["_request_id", "_row"],
            right_keys=["request_id", "row"],
            join_type="inner",
        )
        return joined if joined.num_rows else None

    # ---- alert rules --------------------------------------------------------------

    def add_rules(
        self,
        caller: Principal,
        project: str,
        name: str,
        rules: Sequence[str],
        *,
        webhook: str = "",
        action: str = "",
        hysteresis: float = 0.1,
    ) -> AddedRules:
        """Parse, check (features against the model) and store rules, all or none."""
        dep = self.deployment(caller, project, name, Role.EDITOR)
        if not rules:
            raise InvalidInput("give at least one rule")
        if len(rules) > MAX_RULES_PER_CALL:
            raise InvalidInput(f"at most {MAX_RULES_PER_CALL} rules at once")
        if not (math.isfinite(hysteresis) and 0 <= hysteresis < 1):
            raise InvalidInput(f"hysteresis must be in [0, 1), got {hysteresis}")
        if webhook:
            check_webhook_url(webhook)
        if action:
            self._repo.action(project, action)  # NotFound names it
        _, _, features = self.model_of(dep)
        parsed = []
        for text in rules:
            rule = parse_rule(text)
            if rule.feature is not None:
                check_features(rule, features)
            parsed.append(rule.text)
        secret = "whsec_" + secrets.token_urlsafe(32) if webhook else ""
        added = self._repo.add_rules(
            dep.id,
            parsed,
            webhook_url=webhook,
            webhook_secret=secret,
            action=action,
            hysteresis=hysteresis,
            created_by=caller.user,
        )
        for record in added:
            self._repo.add_event(
                dep.id, record.id, "rule", f"rule added: {record.rule}", {"by": caller.user}
            )
        return AddedRules(tuple(added), secret or None)

    def rules(self, caller: Principal, project: str, name: str) -> list[AlertRuleRecord]:
        dep = self.deployment(caller, project, name, Role.VIEWER)
        return self._repo.rules(dep.id)

    def delete_rule(self, caller: Principal, project: str, name: str, rule_id: int) -> None:
        dep = self.deployment(caller, project, name, Role.EDITOR)
        rule = self._repo.rule(rule_id) if rule_id > 0 else None
        self._repo.delete_rule(dep.id, rule_id)
        text = rule.rule if rule is not None else str(rule_id)
        self._repo.add_event(
            dep.id, None, "rule", f"rule removed: {text}", {"by": caller.user, "rule_id": rule_id}
        )

    def history(
        self,
        caller: Principal,
        project: str,
        name: str,
        *,
        after_id: int = 0,
        limit: int = 200,
        kind: str | None = None,
    ) -> list[AlertEvent]:
        dep = self.deployment(caller, project, name, Role.VIEWER)
        if not 1 <= limit <= 5000:
            raise InvalidInput(f"limit must be between 1 and 5000, got {limit}")
        return self._repo.history(dep.id, after_id=after_id, limit=limit, kind=kind)

    def latest_events(
        self,
        caller: Principal,
        project: str,
        name: str,
        *,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AlertEvent]:
        """A page of the alert history, newest first: the ``limit`` lines before
        ``before_id`` (the web UI's; :meth:`history` reads forward, as a tail does)."""
        dep = self.deployment(caller, project, name, Role.VIEWER)
        if not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be between 1 and 1000, got {limit}")
        return self._repo.latest_events(dep.id, before_id=before_id, limit=limit)

    # ---- silences -----------------------------------------------------------------

    def silence(
        self,
        caller: Principal,
        project: str,
        name: str,
        *,
        duration: str,
        rule: str = "",
        comment: str = "",
    ) -> SilenceRecord:
        dep = self.deployment(caller, project, name, Role.EDITOR)
        seconds = parse_duration(duration)
        if seconds <= 0:
            raise InvalidInput("a silence must last longer than 0 s")
        text = parse_rule(rule).text if rule else ""
        now_ms = int(self._clock.now() * 1000)
        record = self._repo.add_silence(
            dep.id, text, now_ms, now_ms + int(seconds * 1000), comment[:500], caller.user
        )
        self._repo.add_event(
            dep.id,
            None,
            "silence",
            f"silenced {text or 'every rule'} for {duration}",
            {"silence_id": record.id, "by": caller.user},
        )
        return record

    def silences(self, caller: Principal, project: str, name: str) -> list[SilenceRecord]:
        dep = self.deployment(caller, project, name, Role.VIEWER)
        return self._repo.silences(dep.id, active_at_ms=int(self._clock.now() * 1000))

    def unsilence(self, caller: Principal, project: str, name: str, silence_id: int) -> None:
        dep = self.deployment(caller, project, name, Role.EDITOR)
        self._repo.expire_silence(dep.id, silence_id)

    # ---- actions ------------------------------------------------------------------

    def add_action(
        self,
        caller: Principal,
        project: str,
        name: str,
        *,
        command: Sequence[str] = (),
        webhook: str = "",
        timeout_s: float = 300.0,
    ) -> ActionRecord:
        """Register an action alerts can trigger.

        A command runs on the server's machine with the server's rights, so only
        platform admins may register one; project admins may register webhooks.
        """
        if not ACTION_NAME.fullmatch(name):
            raise InvalidInput(
                f"action name {name!r}: use 1-63 lower-case letters, digits, '_' and '-'"
            )
        if bool(command) == bool(webhook):
            raise InvalidInput("give exactly one of a command or a webhook")
        if not (math.isfinite(timeout_s) and 1 <= timeout_s <= 86400):
            raise InvalidInput(f"timeout must be between 1 s and a day, got {timeout_s}")
        if command:
            caller.require_platform_admin()
            if any(not isinstance(a, str) or "\x00" in a for a in command) or not command[0]:
                raise InvalidInput("command: give the program and its arguments as strings")
            return self._repo.add_action(
                project,
                name,
                "command",
                {"argv": list(command), "timeout_s": timeout_s},
                caller.user,
            )
        caller.require(project, Role.ADMIN)
        check_webhook_url(webhook)
        secret = "whsec_" + secrets.token_urlsafe(32)
        return self._repo.add_action(
            project,
            name,
            "webhook",
            {"url": webhook, "secret": secret, "timeout_s": timeout_s},
            caller.user,
        )

    def actions(self, caller: Principal, project: str) -> list[ActionRecord]:
        caller.require(project, Role.VIEWER)
        return self._repo.actions(project)

    def delete_action(self, caller: Principal, project: str, name: str) -> None:
        caller.require(project, Role.ADMIN)
        self._repo.delete_action(project, name)

    # ---- exports ------------------------------------------------------------------

    def export(self, caller: Principal, project: str) -> tuple[str, dict[str, Any]]:
        """Prometheus alerting rules (YAML) and a Grafana dashboard for a project."""
        from modelyard.monitor._export import grafana_dashboard, render_prometheus_rules

        caller.require(project, Role.VIEWER)
        deployments = self._store.deployments.list_all(project)
        rules = []
        for dep in deployments:
            for record in self._repo.rules(dep.id):
                rules.append((project, dep.name, parse_rule(record.rule)))
        return render_prometheus_rules(rules), grafana_dashboard([d.name for d in deployments])


def _features(signature_json: str) -> tuple[str, ...]:
    if not signature_json:
        return ()
    try:
        signature = Signature.from_json(json.loads(signature_json))
    except (InvalidInput, ValueError):
        return ()
    if isinstance(signature.inputs, ColumnSchema):
        return tuple(c.name for c in signature.inputs.columns)
    return ()


def drift_json(record: DriftRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "time_ms": record.time_ms,
        "window_start_ms": record.window_start_ms,
        "window_end_ms": record.window_end_ms,
        "reference": record.reference,
        "rows": record.rows,
        "drift_share": record.drift_share,
        "dataset_drift": record.dataset_drift,
        "report": record.report,
    }


def rule_json(record: AlertRuleRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "deployment": record.deployment,
        "rule": record.rule,
        "webhook": record.webhook_url,
        "action": record.action,
        "hysteresis": record.hysteresis,
        "state": record.state,
        "enabled": record.enabled,
        "created_by": record.created_by,
        "created_at_ms": record.created_at_ms,
    }
