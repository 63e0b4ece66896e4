"""Persistence of monitoring: settings, prediction-log segments, live samples, drift
results, alert rules with their state and history, silences, actions and feedback.

Every write is one transaction. A prediction segment's row and its artifact-index entry
are committed together, so a segment is either fully visible (and kept from garbage
collection) or not at all; ``batch`` is unique, so collecting the same spool files twice
is refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from modelyard.core.errors import AlreadyExists, NotFound
from modelyard.core.monitoring import (
    ActionRecord,
    AlertEvent,
    AlertRuleRecord,
    DriftRecord,
    FeedbackBatch,
    MonitorConfig,
    MonitorSample,
    PredictionSegment,
    SilenceRecord,
)
from modelyard.store._sql import SqlStore
from modelyard.store.schema import (
    AlertActionRow,
    AlertEventRow,
    AlertRuleRow,
    AlertSilenceRow,
    ArtifactEntryRow,
    DeploymentMonitoringRow,
    DeploymentRow,
    DriftResultRow,
    FeedbackBatchRow,
    MonitorSampleRow,
    PredictionSegmentRow,
    ProjectRow,
)


def segment_namespace(deployment_id: int) -> str:
    """The artifact-index namespace holding a deployment's prediction-log segments."""
    return f"predictions:{deployment_id}"


def feedback_namespace(deployment_id: int) -> str:
    """The artifact-index namespace holding a deployment's feedback (label) files."""
    return f"feedback:{deployment_id}"


class MonitorRepository:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def _now_ms(self) -> int:
        return int(self._store.clock.now() * 1000)

    # ---- settings ------------------------------------------------------------------

    def config(self, deployment_id: int) -> MonitorConfig:
        """The deployment's monitoring settings (the defaults until changed)."""
        with self._store.read() as s:
            row = s.get(DeploymentMonitoringRow, deployment_id)
            if row is None:
                return MonitorConfig()
            return MonitorConfig.from_dict(json.loads(row.config_json))

    def set_config(self, deployment_id: int, config: MonitorConfig) -> MonitorConfig:
        with self._store.transaction() as s:
            row = s.get(DeploymentMonitoringRow, deployment_id)
            if row is None:
                row = DeploymentMonitoringRow(deployment_id=deployment_id)
                s.add(row)
            row.config_json = config.to_json()
            row.updated_at_ms = self._now_ms()
        return config

    # ---- prediction-log segments ---------------------------------------------------

    def add_segment(
        self,
        deployment_id: int,
        source: str,
        revision: int,
        batch: str,
        first_ms: int,
        last_ms: int,
        rows: int,
        size: int,
        digest: str,
    ) -> PredictionSegment:
        """Record a segment and index its blob, in one transaction.

        Raises:
            AlreadyExists: this batch was collected before.
        """
        now = self._now_ms()
        with self._store.transaction(f"prediction batch {batch} was already collected") as s:
            row = PredictionSegmentRow(
                deployment_id=deployment_id,
                source=source,
                revision=revision,
                batch=batch,
                first_ms=first_ms,
                last_ms=last_ms,
                rows=rows,
                size=size,
                digest=digest,
                created_at_ms=now,
            )
            s.add(row)
            s.add(
                ArtifactEntryRow(
                    namespace=segment_namespace(deployment_id),
                    path=f"{batch}.parquet",
                    digest=digest,
                    size=size,
                    created_at=now / 1000,
                )
            )
            s.flush()
            return _segment(row)

    def has_batch(self, batch: str) -> bool:
        with self._store.read() as s:
            found = s.scalar(
                select(PredictionSegmentRow.id).where(PredictionSegmentRow.batch == batch)
            )
            return found is not None

    def segments(
        self,
        deployment_id: int,
        *,
        since_ms: int = 0,
        until_ms: int | None = None,
        source: str | None = None,
    ) -> list[PredictionSegment]:
        """Segments (of one ``source`` if given) with rows in ``[since_ms, until_ms]``,
        oldest first."""
        with self._store.read() as s:
            q = select(PredictionSegmentRow).where(
                PredictionSegmentRow.deployment_id == deployment_id,
                PredictionSegmentRow.last_ms >= since_ms,
            )
            if source is not None:
                q = q.where(PredictionSegmentRow.source == source)
            if until_ms is not None:
                q = q.where(PredictionSegmentRow.first_ms <= until_ms)
            rows = s.scalars(q.order_by(PredictionSegmentRow.first_ms, PredictionSegmentRow.id))
            return [_segment(r) for r in rows]

    def remove_segments(self, deployment_id: int, ids: Sequence[int]) -> list[str]:
        """Forget segments and their index entries.

        Returns:
            The digests of removed segments that nothing in the index refers to any more
            (the caller may delete those blobs).
        """
        if not ids:
            return []
        with self._store.transaction() as s:
            rows = s.scalars(
                select(PredictionSegmentRow).where(
                    PredictionSegmentRow.deployment_id == deployment_id,
                    PredictionSegmentRow.id.in_(list(ids)),
                )
            ).all()
            paths = [f"{r.batch}.parquet" for r in rows]
            digests = {r.digest for r in rows}
            s.execute(
                delete(ArtifactEntryRow).where(
                    ArtifactEntryRow.namespace == segment_namespace(deployment_id),
                    ArtifactEntryRow.path.in_(paths),
                )
            )
            for r in rows:
                s.delete(r)
            s.flush()
            still = set(
                s.scalars(
                    select(ArtifactEntryRow.digest).where(ArtifactEntryRow.digest.in_(digests))
                )
            )
            return sorted(digests - still)

    # ---- live samples --------------------------------------------------------------

    def add_samples(self, samples: Sequence[MonitorSample]) -> None:
        if not samples:
            return
        with self._store.transaction() as s:
            for sample in samples:
                s.add(
                    MonitorSampleRow(
                        deployment_id=sample.deployment_id,
                        time_ms=sample.time_ms,
                        interval_s=sample.interval_s,
                        values_json=json.dumps(sample.values, sort_keys=True),
                    )
                )

    def samples(self, deployment_id: int, *, since_ms: int = 0) -> list[MonitorSample]:
        """Samples at or after ``since_ms``, oldest first."""
        with self._store.read() as s:
            rows = s.scalars(
                select(MonitorSampleRow)
                .where(
                    MonitorSampleRow.deployment_id == deployment_id,
                    MonitorSampleRow.time_ms >= since_ms,
                )
                .order_by(MonitorSampleRow.time_ms, MonitorSampleRow.id)
            )
            return [
                MonitorSample(r.deployment_id, r.time_ms, r.interval_s, json.loads(r.values_json))
                for r in rows
            ]

    def latest_sample(self, deployment_id: int) -> MonitorSample | None:
        with self._store.read() as s:
            r = s.scalar(
                select(MonitorSampleRow)
                .where(MonitorSampleRow.deployment_id == deployment_id)
                .order_by(MonitorSampleRow.time_ms.desc(), MonitorSampleRow.id.desc())
                .limit(1)
            )
            if r is None:
                return None
            return MonitorSample(
                r.deployment_id, r.time_ms, r.interval_s, json.loads(r.values_json)
            )

    def has_feedback(self, deployment_id: int) -> bool:
        with self._store.read() as s:
            found = s.scalar(
                select(FeedbackBatchRow.id).where(FeedbackBatchRow.deployment_id == deployment_id)
            )
            return found is not None

    def prune_samples(self, before_ms: int) -> int:
        with self._store.transaction() as s:
            result = s.execute(delete(MonitorSampleRow).where(MonitorSampleRow.time_ms < before_ms))
            return int(getattr(result, "rowcount", 0) or 0)

    # ---- drift ---------------------------------------------------------------------

    def add_drift(
        self,
        deployment_id: int,
        window_start_ms: int,
        window_end_ms: int,
        reference: str,
        rows: int,
        drift_share: float,
        dataset_drift: bool,
        report: dict[str, Any],
    ) -> DriftRecord:
        with self._store.transaction() as s:
            row = DriftResultRow(
                deployment_id=deployment_id,
                time_ms=self._now_ms(),
                window_start_ms=window_start_ms,
                window_end_ms=window_end_ms,
                reference=reference[:300],
                rows=rows,
                drift_share=drift_share,
                dataset_drift=dataset_drift,
                report_json=json.dumps(report, sort_keys=True),
            )
            s.add(row)
            s.flush()
            return _drift(row)

    def latest_drift(self, deployment_id: int) -> DriftRecord | None:
        with self._store.read() as s:
            row = s.scalar(
                select(DriftResultRow)
                .where(DriftResultRow.deployment_id == deployment_id)
                .order_by(DriftResultRow.id.desc())
                .limit(1)
            )
            return _drift(row) if row is not None else None

    def drift_history(self, deployment_id: int, *, limit: int = 100) -> list[DriftRecord]:
        """The newest ``limit`` drift results, oldest first."""
        with self._store.read() as s:
            rows = s.scalars(
                select(DriftResultRow)
                .where(DriftResultRow.deployment_id == deployment_id)
                .order_by(DriftResultRow.id.desc())
                .limit(limit)
            ).all()
            return [_drift(r) for r in reversed(rows)]

    # ---- alert rules ---------------------------------------------------------------

    def add_rules(
        self,
        deployment_id: int,
        rules: Sequence[str],
        *,
        webhook_url: str,
        webhook_secret: str,
        action: str,
        hysteresis: float,
        created_by: str,
    ) -> list[AlertRuleRecord]:
        """Add rules to a deployment, all or none."""
        now = self._now_ms()
        with self._store.transaction() as s:
            added = []
            for text in rules:
                row = AlertRuleRow(
                    deployment_id=deployment_id,
                    rule=text,
                    webhook_url=webhook_url,
                    webhook_secret=webhook_secret,
                    action=action,
                    hysteresis=hysteresis,
                    state_json="{}",
                    enabled=True,
                    created_by=created_by,
                    created_at_ms=now,
                )
                s.add(row)
                added.append(row)
            s.flush()
            return [_rule(s, r) for r in added]

    def rules(self, deployment_id: int | None = None) -> list[AlertRuleRecord]:
        """Rules of one deployment (or of every live deployment), oldest first."""
        with self._store.read() as s:
            q = select(AlertRuleRow)
            if deployment_id is not None:
                q = q.where(AlertRuleRow.deployment_id == deployment_id)
            else:
                q = q.join(DeploymentRow, DeploymentRow.id == AlertRuleRow.deployment_id).where(
                    DeploymentRow.status == "active"
                )
            return [_rule(s, r) for r in s.scalars(q.order_by(AlertRuleRow.id))]

    def rule(self, rule_id: int) -> AlertRuleRecord:
        with self._store.read() as s:
            row = s.get(AlertRuleRow, rule_id)
            if row is None:
                raise NotFound(f"no alert rule {rule_id}")
            return _rule(s, row)

    def webhook_secret(self, rule_id: int) -> str:
        with self._store.read() as s:
            row = s.get(AlertRuleRow, rule_id)
            if row is None:
                raise NotFound(f"no alert rule {rule_id}")
            return row.webhook_secret

    def delete_rule(self, deployment_id: int, rule_id: int) -> None:
        with self._store.transaction() as s:
            row = s.get(AlertRuleRow, rule_id)
            if row is None or row.deployment_id != deployment_id:
                raise NotFound(f"the deployment has no alert rule {rule_id}")
            s.delete(row)

    def save_state(
        self, rule_id: int, state: dict[str, Any], events: Sequence[tuple[str, str, dict[str, Any]]]
    ) -> None:
        """Store a rule's evaluation state with the history lines explaining it."""
        now = self._now_ms()
        with self._store.transaction() as s:
            row = s.get(AlertRuleRow, rule_id)
            if row is None:
                return  # deleted meanwhile
            row.state_json = json.dumps(state, sort_keys=True)
            for kind, message, data in events:
                s.add(_event_row(row.id, row.deployment_id, now, kind, message, data))

    # ---- history -------------------------------------------------------------------

    def add_event(
        self,
        deployment_id: int,
        rule_id: int | None,
        kind: str,
        message: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        with self._store.transaction() as s:
            s.add(_event_row(rule_id, deployment_id, self._now_ms(), kind, message, data or {}))

    def history(
        self, deployment_id: int, *, after_id: int = 0, limit: int = 200, kind: str | None = None
    ) -> list[AlertEvent]:
        """History lines after ``after_id``, oldest first."""
        with self._store.read() as s:
            name = s.scalar(select(DeploymentRow.name).where(DeploymentRow.id == deployment_id))
            q = select(AlertEventRow).where(
                AlertEventRow.deployment_id == deployment_id, AlertEventRow.id > after_id
            )
            if kind is not None:
                q = q.where(AlertEventRow.kind == kind)
            rows = s.scalars(q.order_by(AlertEventRow.id).limit(limit)).all()
            return [
                AlertEvent(
                    r.id,
                    r.rule_id,
                    name or "",
                    r.time_ms,
                    r.kind,
                    r.message,
                    json.loads(r.data_json or "{}"),
                )
                for r in rows
            ]

    def latest_events(
        self, deployment_id: int, *, before_id: int | None = None, limit: int = 100
    ) -> list[AlertEvent]:
        """The newest ``limit`` history lines (before ``before_id`` if given), newest
        first: a page of the alert history, for the web UI."""
        with self._store.read() as s:
            name = s.scalar(select(DeploymentRow.name).where(DeploymentRow.id == deployment_id))
            q = select(AlertEventRow).where(AlertEventRow.deployment_id == deployment_id)
            if before_id is not None:
                q = q.where(AlertEventRow.id < before_id)
            rows = s.scalars(q.order_by(AlertEventRow.id.desc()).limit(limit)).all()
            return [
                AlertEvent(
                    r.id,
                    r.rule_id,
                    name or "",
                    r.time_ms,
                    r.kind,
                    r.message,
                    json.loads(r.data_json or "{}"),
                )
                for r in rows
            ]

    # ---- silences ------------------------------------------------------------------

    def add_silence(
        self,
        deployment_id: int,
        rule: str,
        starts_ms: int,
        ends_ms: int,
        comment: str,
        created_by: str,
    ) -> SilenceRecord:
        with self._store.transaction() as s:
            row = AlertSilenceRow(
                deployment_id=deployment_id,
                rule=rule,
                starts_ms=starts_ms,
                ends_ms=ends_ms,
                comment=comment,
                created_by=created_by,
            )
            s.add(row)
            s.flush()
            return _silence(row)

    def silences(
        self, deployment_id: int, *, active_at_ms: int | None = None
    ) -> list[SilenceRecord]:
        with self._store.read() as s:
            q = select(AlertSilenceRow).where(AlertSilenceRow.deployment_id == deployment_id)
            if active_at_ms is not None:
                q = q.where(AlertSilenceRow.ends_ms > active_at_ms)
            return [_silence(r) for r in s.scalars(q.order_by(AlertSilenceRow.id))]

    def expire_silence(self, deployment_id: int, silence_id: int) -> None:
        with self._store.transaction() as s:
            result = s.execute(
                update(AlertSilenceRow)
                .where(
                    AlertSilenceRow.id == silence_id,
                    AlertSilenceRow.deployment_id == deployment_id,
                )
                .values(ends_ms=self._now_ms())
            )
            if getattr(result, "rowcount", 0) == 0:
                raise NotFound(f"the deployment has no silence {silence_id}")

    # ---- actions -------------------------------------------------------------------

    def add_action(
        self, project: str, name: str, kind: str, config: dict[str, Any], created_by: str
    ) -> ActionRecord:
        with self._store.transaction(f"action {name!r} already exists") as s:
            project_id = _project_id(s, project)
            if s.scalar(
                select(AlertActionRow.id).where(
                    AlertActionRow.project_id == project_id, AlertActionRow.name == name
                )
            ):
                raise AlreadyExists(f"action {name!r} already exists in project {project!r}")
            row = AlertActionRow(
                project_id=project_id,
                name=name,
                kind=kind,
                config_json=json.dumps(config, sort_keys=True),
                created_by=created_by,
                created_at_ms=self._now_ms(),
            )
            s.add(row)
            s.flush()
            return _action(row, project)

    def actions(self, project: str) -> list[ActionRecord]:
        with self._store.read() as s:
            project_id = _project_id(s, project)
            rows = s.scalars(
                select(AlertActionRow)
                .where(AlertActionRow.project_id == project_id)
                .order_by(AlertActionRow.name)
            )
            return [_action(r, project) for r in rows]

    def action(self, project: str, name: str) -> ActionRecord:
        with self._store.read() as s:
            project_id = _project_id(s, project)
            row = s.scalar(
                select(AlertActionRow).where(
                    AlertActionRow.project_id == project_id, AlertActionRow.name == name
                )
            )
            if row is None:
                raise NotFound(f"no action {name!r} in project {project!r}")
            return _action(row, project)

    def delete_action(self, project: str, name: str) -> None:
        with self._store.transaction() as s:
            project_id = _project_id(s, project)
            result = s.execute(
                delete(AlertActionRow).where(
                    AlertActionRow.project_id == project_id, AlertActionRow.name == name
                )
            )
            if getattr(result, "rowcount", 0) == 0:
                raise NotFound(f"no action {name!r} in project {project!r}")

    # ---- feedback ------------------------------------------------------------------

    def add_feedback(
        self, deployment_id: int, rows: int, matched: int, digest: str, size: int
    ) -> FeedbackBatch:
        now = self._now_ms()
        with self._store.transaction() as s:
            row = FeedbackBatchRow(
                deployment_id=deployment_id,
                time_ms=now,
                rows=rows,
                matched=matched,
                digest=digest,
                size=size,
            )
            s.add(row)
            s.flush()
            s.add(
                ArtifactEntryRow(
                    namespace=feedback_namespace(deployment_id),
                    path=f"{row.id}.parquet",
                    digest=digest,
                    size=size,
                    created_at=now / 1000,
                )
            )
            return _feedback(row)

    def feedback(self, deployment_id: int) -> list[FeedbackBatch]:
        with self._store.read() as s:
            rows = s.scalars(
                select(FeedbackBatchRow)
                .where(FeedbackBatchRow.deployment_id == deployment_id)
                .order_by(FeedbackBatchRow.id)
            )
            return [_feedback(r) for r in rows]

    def segment_bytes(self, deployment_id: int) -> int:
        with self._store.read() as s:
            total = s.scalar(
                select(func.coalesce(func.sum(PredictionSegmentRow.size), 0)).where(
                    PredictionSegmentRow.deployment_id == deployment_id
                )
            )
            return int(total or 0)


def _project_id(s: Session, project: str) -> str:
    project_id = s.scalar(select(ProjectRow.id).where(ProjectRow.name == project))
    if project_id is None:
        raise NotFound(f"project {project!r} does not exist")
    return project_id


def _event_row(
    rule_id: int | None,
    deployment_id: int,
    now_ms: int,
    kind: str,
    message: str,
    data: dict[str, Any],
) -> AlertEventRow:
    return AlertEventRow(
        rule_id=rule_id,
        deployment_id=deployment_id,
        time_ms=now_ms,
        kind=kind,
        message=message,
        data_json=json.dumps(data, sort_keys=True, default=str),
    )


def _segment(r: PredictionSegmentRow) -> PredictionSegment:
    return PredictionSegment(
        r.id,
        r.deployment_id,
        r.source,
        r.revision,
        r.batch,
        r.first_ms,
        r.last_ms,
        r.rows,
        r.size,
        r.digest,
        r.created_at_ms,
    )


def _drift(r: DriftResultRow) -> DriftRecord:
    return DriftRecord(
        r.id,
        r.deployment_id,
        r.time_ms,
        r.window_start_ms,
        r.window_end_ms,
        r.reference,
        r.rows,
        r.drift_share,
        r.dataset_drift,
        json.loads(r.report_json),
    )


def _rule(s: Session, r: AlertRuleRow) -> AlertRuleRecord:
    dep = s.get(DeploymentRow, r.deployment_id)
    project = (
        s.scalar(select(ProjectRow.name).where(ProjectRow.id == dep.project_id)) if dep else ""
    )
    return AlertRuleRecord(
        id=r.id,
        deployment_id=r.deployment_id,
        deployment=dep.name if dep is not None else "",
        project=project or "",
        rule=r.rule,
        webhook_url=r.webhook_url,
        action=r.action,
        hysteresis=r.hysteresis,
        state=json.loads(r.state_json or "{}"),
        enabled=r.enabled,
        created_by=r.created_by,
        created_at_ms=r.created_at_ms,
    )


def _silence(r: AlertSilenceRow) -> SilenceRecord:
    return SilenceRecord(
        r.id, r.deployment_id, r.rule, r.starts_ms, r.ends_ms, r.comment, r.created_by
    )


def _action(r: AlertActionRow, project: str) -> ActionRecord:
    return ActionRecord(
        r.id, project, r.name, r.kind, json.loads(r.config_json), r.created_by, r.created_at_ms
    )


def _feedback(r: FeedbackBatchRow) -> FeedbackBatch:
    return FeedbackBatch(r.id, r.deployment_id, r.time_ms, r.rows, r.matched, r.digest, r.size)
