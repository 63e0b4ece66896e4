"""The reads that gather a ledger period's facts from what other capabilities record:
replica lifetimes, traffic buckets, runs with their tags, and indexed bytes with the
owner (project, deployment, run) each artifact namespace resolves to."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelyard.core.cost_facts import ReplicaFact, RunFact, RunInfo, StorageFact, TrafficFact
from modelyard.store._monitor_repo import feedback_namespace, segment_namespace
from modelyard.store.schema import (
    ArtifactEntryRow,
    DatasetRow,
    DatasetVersionRow,
    DeploymentReplicaRow,
    DeploymentRow,
    DeploymentTrafficRow,
    ExperimentRow,
    LoggedModelRow,
    ProjectRow,
    RegisteredModelRow,
    RunRow,
    RunTagRow,
)

CHUNK = 500
_T = TypeVar("_T")
_RUNNING = ("RUNNING", "SCHEDULED")


def chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    """``items`` in slices small enough for one ``IN (...)`` on every backend."""
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def replica_facts(
    s: Session,
    start_ms: int,
    end_ms: int,
    projects: Sequence[str] | None,
    deployment_ids: Sequence[int] | None,
) -> tuple[ReplicaFact, ...]:
    r = DeploymentReplicaRow
    q = (
        select(r, DeploymentRow.name, ProjectRow.name)
        .join(DeploymentRow, DeploymentRow.id == r.deployment_id)
        .join(ProjectRow, ProjectRow.id == DeploymentRow.project_id)
        .where(r.started_at_ms < end_ms)
        .where(r.stopped_at_ms.is_(None) | (r.stopped_at_ms > start_ms))
    )
    if projects is not None:
        q = q.where(ProjectRow.name.in_(list(projects)))
    if deployment_ids is not None:
        q = q.where(r.deployment_id.in_(list(deployment_ids)))
    return tuple(
        ReplicaFact(
            row.id,
            project,
            name,
            row.deployment_id,
            row.revision,
            row.cpu,
            row.memory_mb,
            row.gpu,
            row.started_at_ms,
            row.stopped_at_ms,
        )
        for row, name, project in s.execute(q.order_by(r.started_at_ms, r.id))
    )


def traffic_facts(
    s: Session,
    start_ms: int,
    end_ms: int,
    projects: Sequence[str] | None,
    deployment_ids: Sequence[int] | None,
) -> tuple[TrafficFact, ...]:
    t = DeploymentTrafficRow
    q = (
        select(t, DeploymentRow.name, ProjectRow.name)
        .join(DeploymentRow, DeploymentRow.id == t.deployment_id)
        .join(ProjectRow, ProjectRow.id == DeploymentRow.project_id)
        .where(t.bucket_ms >= start_ms, t.bucket_ms < end_ms)
    )
    if projects is not None:
        q = q.where(ProjectRow.name.in_(list(projects)))
    if deployment_ids is not None:
        q = q.where(t.deployment_id.in_(list(deployment_ids)))
    return tuple(
        TrafficFact(
            project,
            name,
            row.deployment_id,
            row.bucket_ms,
            row.requests,
            row.sampled_s,
            row.replica_s,
            row.idle_replica_s,
        )
        for row, name, project in s.execute(q.order_by(t.deployment_id, t.bucket_ms))
    )


def run_facts(
    s: Session, start_ms: int, end_ms: int, projects: Sequence[str] | None
) -> tuple[RunFact, ...]:
    """Runs that ran during the period. A run that ended without an end time is billed
    nothing; one still running (or scheduled) is billed up to "now"."""
    q = (
        select(RunRow.id, RunRow.status, RunRow.start_time_ms, RunRow.end_time_ms, ProjectRow.name)
        .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
        .join(ProjectRow, ProjectRow.id == ExperimentRow.project_id)
        .where(RunRow.start_time_ms < end_ms)
        .where(RunRow.end_time_ms.is_(None) | (RunRow.end_time_ms > start_ms))
    )
    if projects is not None:
        q = q.where(ProjectRow.name.in_(list(projects)))
    facts = []
    for run_id, status, start, end, project in s.execute(
        q.order_by(RunRow.start_time_ms, RunRow.id)
    ):
        if end is None and status not in _RUNNING:
            end = start
        facts.append(RunFact(run_id, project, start, end))
    return tuple(facts)


def runs_info(s: Session, run_ids: Iterable[str]) -> dict[str, RunInfo]:
    """Name and tags of each of these runs."""
    ids = sorted(set(run_ids))
    names: dict[str, str] = {}
    tags: dict[str, dict[str, str]] = {}
    for chunk in chunks(ids):
        found = s.execute(select(RunRow.id, RunRow.name).where(RunRow.id.in_(list(chunk))))
        names.update((run_id, name) for run_id, name in found)
        rows = s.execute(
            select(RunTagRow.run_id, RunTagRow.key, RunTagRow.value).where(
                RunTagRow.run_id.in_(list(chunk))
            )
        )
        for run_id, key, value in rows:
            tags.setdefault(run_id, {})[key] = value
    return {i: RunInfo(names[i], tags.get(i, {})) for i in ids if i in names}


# ---- storage: namespaces and their owners ----------------------------------------------

# The owners' naming functions: core.tracking.run_artifact_namespace ("run:<id>"),
# core.models.version_namespace, store._data_repo.dataset_version_namespace,
# store._logged_model_repo.logged_model_namespace, store._monitor_repo.segment_namespace /
# feedback_namespace, server.routes.artifacts.namespace_of_project. A test checks that
# each of them resolves here.
_Owner = tuple[str, str, int | None, str]  # project, deployment, deployment id, run id
_NOBODY: _Owner = ("", "", None, "")


def storage_facts(
    s: Session, start_ms: int, end_ms: int, deployment_ids: Sequence[int] | None
) -> tuple[StorageFact, ...]:
    """Indexed bytes kept during the period, grouped by namespace and creation time.

    Entries created a second or more before the period are summed per namespace (their
    exact creation time does not change what the period bills); the rest keep their
    creation time, compared in whole milliseconds, so adjacent periods bill every
    byte-millisecond once.
    """
    a = ArtifactEntryRow
    start_s, end_s = start_ms / 1000, end_ms / 1000
    scope: list[Any] = []
    if deployment_ids is not None:
        names = [f(i) for i in deployment_ids for f in (segment_namespace, feedback_namespace)]
        scope.append(a.namespace.in_(names))
    before = s.execute(
        select(a.namespace, func.sum(a.size))
        .where(a.created_at < start_s - 1.0, *scope)
        .group_by(a.namespace)
    ).all()
    within = s.execute(
        select(a.namespace, a.created_at, func.sum(a.size))
        .where(a.created_at >= start_s - 1.0, a.created_at < end_s + 1.0, *scope)
        .group_by(a.namespace, a.created_at)
    ).all()
    raw: list[tuple[str, int, int]] = [(ns, start_ms - 1000, int(size)) for ns, size in before]
    for ns, created, size in within:
        created_ms = round(created * 1000)
        if created_ms < end_ms:
            raw.append((ns, created_ms, int(size)))
    owners = _owners(s, {ns for ns, _, _ in raw})
    facts = []
    for ns, created_ms, size in sorted(raw):
        project, deployment, deployment_id, run_id = owners.get(ns, _NOBODY)
        facts.append(StorageFact(ns, project, deployment, deployment_id, run_id, created_ms, size))
    return tuple(facts)


def _owners(s: Session, namespaces: set[str]) -> dict[str, _Owner]:
    """Namespace → (project, deployment, deployment id, run id) for those that resolve."""
    by_kind: dict[str, dict[str, str]] = {}
    for ns in namespaces:
        kind, sep, rest = ns.partition(":")
        if sep and rest:
            by_kind.setdefault(kind, {})[rest] = ns
    out: dict[str, _Owner] = {}
    for name, ns in by_kind.get("project", {}).items():
        out[ns] = (name, "", None, "")
    _resolve_runs(s, by_kind.get("run", {}), out)
    _resolve_int(s, by_kind.get("dataset-version", {}), out, _dataset_projects)
    _resolve_int(s, by_kind.get("model-version", {}), out, _model_projects, head=True)
    _resolve_logged_models(s, by_kind.get("logged-model", {}), out)
    for kind in ("predictions", "feedback"):
        _resolve_deployments(s, by_kind.get(kind, {}), out)
    return out


def _ints(keys: Iterable[str], *, head: bool = False) -> dict[int, list[str]]:
    """Numeric ids in namespace tails (``head``: the part before a ``:``)."""
    ids: dict[int, list[str]] = {}
    for key in keys:
        text = key.split(":", 1)[0] if head else key
        if text.isdigit():
            ids.setdefault(int(text), []).append(key)
    return ids


def _resolve_runs(s: Session, runs: Mapping[str, str], out: dict[str, _Owner]) -> None:
    ids = sorted(runs)
    for chunk in chunks(ids):
        rows = s.execute(
            select(RunRow.id, ProjectRow.name)
            .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
            .join(ProjectRow, ProjectRow.id == ExperimentRow.project_id)
            .where(RunRow.id.in_(list(chunk)))
        )
        for run_id, project in rows:
            out[runs[run_id]] = (project, "", None, run_id)


def _dataset_projects(s: Session, ids: Sequence[int]) -> Iterable[tuple[int, str]]:
    rows = s.execute(
        select(DatasetVersionRow.id, ProjectRow.name)
        .join(DatasetRow, DatasetRow.id == DatasetVersionRow.dataset_id)
        .join(ProjectRow, ProjectRow.id == DatasetRow.project_id)
        .where(DatasetVersionRow.id.in_(list(ids)))
    )
    return [(int(i), str(p)) for i, p in rows]


def _model_projects(s: Session, ids: Sequence[int]) -> Iterable[tuple[int, str]]:
    rows = s.execute(
        select(RegisteredModelRow.id, ProjectRow.name)
        .join(ProjectRow, ProjectRow.id == RegisteredModelRow.project_id)
        .where(RegisteredModelRow.id.in_(list(ids)))
    )
    return [(int(i), str(p)) for i, p in rows]


def _resolve_int(
    s: Session,
    keys: Mapping[str, str],
    out: dict[str, _Owner],
    lookup: Any,
    *,
    head: bool = False,
) -> None:
    ids = _ints(keys, head=head)
    for chunk in chunks(sorted(ids)):
        for number, project in lookup(s, chunk):
            for key in ids[number]:
                out[keys[key]] = (project, "", None, "")


def _resolve_logged_models(s: Session, models: Mapping[str, str], out: dict[str, _Owner]) -> None:
    for chunk in chunks(sorted(models)):
        rows = s.execute(
            select(LoggedModelRow.id, ProjectRow.name)
            .join(ExperimentRow, ExperimentRow.id == LoggedModelRow.experiment_id)
            .join(ProjectRow, ProjectRow.id == ExperimentRow.project_id)
            .where(LoggedModelRow.id.in_(list(chunk)))
        )
        for model_id, project in rows:
            out[models[model_id]] = (project, "", None, "")


def _resolve_deployments(s: Session, deps: Mapping[str, str], out: dict[str, _Owner]) -> None:
    ids = _ints(deps)
    for chunk in chunks(sorted(ids)):
        rows = s.execute(
            select(DeploymentRow.id, DeploymentRow.name, ProjectRow.name)
            .join(ProjectRow, ProjectRow.id == DeploymentRow.project_id)
            .where(DeploymentRow.id.in_(list(chunk)))
        )
        for dep_id, name, project in rows:
            for key in ids[int(dep_id)]:
                out[deps[key]] = (project, name, int(dep_id), "")
