"""Persistence of the cost ledger's own records (tags, per-minute traffic, replica usage),
and a period's facts gathered from what other capabilities record
(:mod:`._cost_queries`).

The ledger is recomputed from facts on every report, never stored: replica lifetimes
(``deployment_replicas``), run durations (``runs``), indexed bytes (``artifact_entries``)
and the traffic the monitor loop counted (``deployment_traffic``). Every write is one
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from modelyard.core.cost_facts import CostFacts, Tags, TrafficSample, UsageSample
from modelyard.core.errors import NotFound
from modelyard.store._cost_queries import (
    chunks,
    replica_facts,
    run_facts,
    runs_info,
    storage_facts,
    traffic_facts,
)
from modelyard.store._sql import SqlStore
from modelyard.store.schema import (
    DeploymentRow,
    DeploymentTagRow,
    DeploymentTrafficRow,
    ProjectRow,
    ProjectTagRow,
    ReplicaUsageRow,
)

#: Width of a traffic bucket: a sample's requests count in the minute its interval began in.
TRAFFIC_BUCKET_MS = 60_000


class CostRepository:
    """Tags, traffic, usage and the ledger's facts. Thread-safe; one method, one
    transaction."""

    def __init__(self, sql: SqlStore) -> None:
        self._sql = sql

    # ---- tags ---------------------------------------------------------------------

    def project_tags(self, projects: Sequence[str] | None = None) -> dict[str, dict[str, str]]:
        """Tags of every project (or of those named), by project name."""
        with self._sql.read() as s:
            return _project_tags(s, projects)

    def deployment_tags(self, deployment_ids: Iterable[int]) -> dict[int, dict[str, str]]:
        with self._sql.read() as s:
            return _deployment_tags(s, list(deployment_ids))

    def set_project_tags(
        self, project: str, values: Mapping[str, str], unset: Sequence[str]
    ) -> dict[str, str]:
        """Set and remove tags of a project; returns all its tags.

        Raises:
            NotFound: no such project.
        """
        with self._sql.transaction() as s:
            project_id = s.scalar(select(ProjectRow.id).where(ProjectRow.name == project))
            if project_id is None:
                raise NotFound(f"project {project!r} does not exist")
            q = select(ProjectTagRow).where(ProjectTagRow.project_id == project_id)
            return _apply_tags(
                s,
                {r.key: r for r in s.scalars(q)},
                values,
                unset,
                lambda k, v: ProjectTagRow(project_id=project_id, key=k, value=v),
            )

    def set_deployment_tags(
        self, deployment_id: int, values: Mapping[str, str], unset: Sequence[str]
    ) -> dict[str, str]:
        """Set and remove tags of a deployment; returns all its tags."""
        with self._sql.transaction() as s:
            q = select(DeploymentTagRow).where(DeploymentTagRow.deployment_id == deployment_id)
            return _apply_tags(
                s,
                {r.key: r for r in s.scalars(q)},
                values,
                unset,
                lambda k, v: DeploymentTagRow(deployment_id=deployment_id, key=k, value=v),
            )

    # ---- what the monitor loop records --------------------------------------------

    def add_traffic(self, samples: Sequence[TrafficSample]) -> None:
        """Add monitor samples to their deployments' minute buckets (a sample's bucket
        holds the start of its interval, so a report up to now counts every sample
        recorded so far)."""
        if not samples:
            return
        with self._sql.transaction() as s:
            for sample in sorted(samples, key=lambda x: (x.deployment_id, x.time_ms)):
                began = sample.time_ms - round(sample.interval_s * 1000)
                bucket = began - began % TRAFFIC_BUCKET_MS
                row = s.get(DeploymentTrafficRow, (sample.deployment_id, bucket))
                if row is None:
                    row = DeploymentTrafficRow(
                        deployment_id=sample.deployment_id,
                        bucket_ms=bucket,
                        requests=0,
                        sampled_s=0.0,
                        replica_s=0.0,
                        idle_replica_s=0.0,
                    )
                    s.add(row)
                replica_s = sample.replicas * sample.interval_s
                row.requests += sample.requests
                row.sampled_s += sample.interval_s
                row.replica_s += replica_s
                if sample.requests == 0:
                    row.idle_replica_s += replica_s
                s.flush()

    def add_usage(self, samples: Sequence[UsageSample]) -> None:
        if not samples:
            return
        with self._sql.transaction() as s:
            s.add_all(
                ReplicaUsageRow(
                    deployment_id=u.deployment_id,
                    replica_id=u.replica_id,
                    revision=u.revision,
                    time_ms=u.time_ms,
                    interval_s=u.interval_s,
                    cpu_cores=u.cpu_cores,
                    rss_mb=u.rss_mb,
                )
                for u in samples
            )

    def usage(self, deployment_ids: Sequence[int], start_ms: int, end_ms: int) -> list[UsageSample]:
        """Usage samples of these deployments with ``start_ms < time_ms <= end_ms`` (a
        sample is stamped at the end of the interval it measured), oldest first."""
        if not deployment_ids:
            return []
        with self._sql.read() as s:
            rows = s.scalars(
                select(ReplicaUsageRow)
                .where(
                    ReplicaUsageRow.deployment_id.in_(list(deployment_ids)),
                    ReplicaUsageRow.time_ms > start_ms,
                    ReplicaUsageRow.time_ms <= end_ms,
                )
                .order_by(ReplicaUsageRow.time_ms, ReplicaUsageRow.id)
            )
            return [
                UsageSample(
                    r.deployment_id,
                    r.replica_id,
                    r.revision,
                    r.time_ms,
                    r.interval_s,
                    r.cpu_cores,
                    r.rss_mb,
                )
                for r in rows
            ]

    def prune(self, *, usage_before_ms: int, traffic_before_ms: int) -> int:
        """Drop usage samples and traffic buckets older than the given times; returns how
        many rows went."""
        usage = delete(ReplicaUsageRow).where(ReplicaUsageRow.time_ms < usage_before_ms)
        traffic = delete(DeploymentTrafficRow).where(
            DeploymentTrafficRow.bucket_ms < traffic_before_ms
        )
        with self._sql.transaction() as s:
            gone = [s.execute(usage), s.execute(traffic)]
            return sum(int(getattr(r, "rowcount", 0) or 0) for r in gone)

    # ---- deployments by name, deleted ones included ---------------------------------

    def deployment_ids(self, project: str, name: str) -> list[int]:
        """Ids of every deployment named ``name`` in ``project``, deleted ones too (their
        replica history is billed), oldest first."""
        with self._sql.read() as s:
            return list(
                s.scalars(
                    select(DeploymentRow.id)
                    .join(ProjectRow, ProjectRow.id == DeploymentRow.project_id)
                    .where(ProjectRow.name == project, DeploymentRow.name == name)
                    .order_by(DeploymentRow.id)
                )
            )

    # ---- the facts of a period ------------------------------------------------------

    def facts(
        self,
        start_ms: int,
        end_ms: int,
        now_ms: int,
        *,
        projects: Sequence[str] | None = None,
        deployment_ids: Sequence[int] | None = None,
    ) -> CostFacts:
        """What happened in ``[start_ms, end_ms)`` (of these projects, or only of these
        deployments: then runs and other storage are left out)."""
        with self._sql.read() as s:
            replicas = replica_facts(s, start_ms, end_ms, projects, deployment_ids)
            traffic = traffic_facts(s, start_ms, end_ms, projects, deployment_ids)
            runs = run_facts(s, start_ms, end_ms, projects) if deployment_ids is None else ()
            storage = storage_facts(s, start_ms, end_ms, deployment_ids)
            if projects is not None:
                wanted = set(projects)
                storage = tuple(f for f in storage if f.project in wanted)
            dep_ids = {r.deployment_id for r in replicas} | {t.deployment_id for t in traffic}
            dep_ids |= {f.deployment_id for f in storage if f.deployment_id is not None}
            run_ids = {r.run_id for r in runs} | {f.run_id for f in storage if f.run_id}
            return CostFacts(
                runs_info=runs_info(s, run_ids),
                now_ms=now_ms,
                replicas=replicas,
                runs=runs,
                storage=storage,
                traffic=traffic,
                project_tags=_project_tags(s, projects),
                deployment_tags=_deployment_tags(s, sorted(dep_ids)),
            )


def _apply_tags(
    s: Session,
    rows: dict[str, Any],
    values: Mapping[str, str],
    unset: Sequence[str],
    make: Callable[[str, str], Any],
) -> dict[str, str]:
    for key in unset:
        if key in rows:
            s.delete(rows.pop(key))
    for key, value in values.items():
        if key in rows:
            rows[key].value = value
        else:
            rows[key] = make(key, value)
            s.add(rows[key])
    return {k: rows[k].value for k in sorted(rows)}


def _project_tags(s: Session, projects: Sequence[str] | None) -> dict[str, dict[str, str]]:
    q = select(ProjectRow.name, ProjectTagRow.key, ProjectTagRow.value).join(
        ProjectTagRow, ProjectTagRow.project_id == ProjectRow.id
    )
    if projects is not None:
        q = q.where(ProjectRow.name.in_(list(projects)))
    out: dict[str, dict[str, str]] = {}
    for name, key, value in s.execute(q.order_by(ProjectRow.name, ProjectTagRow.key)):
        out.setdefault(name, {})[key] = value
    return out


def _deployment_tags(s: Session, ids: Sequence[int]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for chunk in chunks(ids):
        rows = s.execute(
            select(DeploymentTagRow.deployment_id, DeploymentTagRow.key, DeploymentTagRow.value)
            .where(DeploymentTagRow.deployment_id.in_(list(chunk)))
            .order_by(DeploymentTagRow.deployment_id, DeploymentTagRow.key)
        )
        for dep_id, key, value in rows:
            out.setdefault(int(dep_id), {})[key] = value
    return out


__all__ = ["TRAFFIC_BUCKET_MS", "CostRepository", "Tags"]
