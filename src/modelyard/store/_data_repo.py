"""Persistence of datasets and their versions (files in the artifact index, one profile).

A version is committed in one transaction — the version row, its file entries (artifact
namespace ``dataset-version:<id>``), its profile and, for a run's output, the lineage
edge — so an interrupted add never leaves a partial version.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, insert, select
from sqlalchemy.orm import Session, aliased

from modelyard.core.datasets import (
    Dataset,
    DatasetSummary,
    DatasetVersion,
    VersionSummary,
    profile_rows,
)
from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import AlreadyExists, NotFound
from modelyard.core.lineage import EdgeType, NodeKind
from modelyard.store._sql import SqlStore
from modelyard.store.schema import (
    ArtifactEntryRow,
    DatasetRow,
    DatasetVersionRow,
    LineageEdgeRow,
    ProjectRow,
)

_CREATE_ATTEMPTS = 5


def dataset_version_namespace(version_id: int) -> str:
    """The artifact namespace holding a dataset version's files."""
    return f"dataset-version:{version_id}"


class DataRepository:
    """Rows of the dataset tables as frozen entities. One method, one transaction."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def _now_ms(self) -> int:
        return int(self._store.clock.now() * 1000)

    def commit_version(
        self,
        project: str,
        name: str,
        files: Sequence[ArtifactEntry],
        *,
        manifest_digest: str,
        user: str,
        message: str = "",
        profile: dict[str, Any] | None = None,
        source_run_id: str | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Commit a new version unless its manifest equals the latest version's.

        Returns:
            The version and whether it was created (False: the latest one, unchanged).
            Versions are numbered 1, 2, 3 … without gaps; concurrent writers retry.
        """
        profile_json = json.dumps(profile or {}, sort_keys=True, allow_nan=False)
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                with self._store.transaction(f"dataset {name!r} changed concurrently") as s:
                    return self._commit(
                        s, project, name, files, manifest_digest, user, message, profile_json,
                        source_run_id,
                    )  # fmt: skip
            except AlreadyExists:
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _commit(
        self,
        s: Session,
        project: str,
        name: str,
        files: Sequence[ArtifactEntry],
        manifest_digest: str,
        user: str,
        message: str,
        profile_json: str,
        source_run_id: str | None,
    ) -> tuple[DatasetVersion, bool]:
        now = self._now_ms()
        dataset = _find_dataset(s, project, name)
        if dataset is None:
            dataset = DatasetRow(
                project_id=_project_id(s, project), name=name, description="", created_at_ms=now
            )
            s.add(dataset)
            s.flush()
        latest = _latest_row(s, dataset.id)
        if latest is not None and latest.manifest_digest == manifest_digest:
            if source_run_id is not None:
                _add_output_edge(s, source_run_id, latest.id, now)
            return self._version(s, dataset, latest, project), False
        row = DatasetVersionRow(
            dataset_id=dataset.id,
            version=(latest.version if latest else 0) + 1,
            manifest_digest=manifest_digest,
            total_size=sum(f.size for f in files),
            file_count=len(files),
            message=message,
            user=user,
            source_run_id=source_run_id,
            profile_json=profile_json,
            created_at_ms=now,
        )
        s.add(row)
        s.flush()
        namespace = dataset_version_namespace(row.id)
        if files:
            s.execute(
                insert(ArtifactEntryRow),
                [
                    {"namespace": namespace, "path": f.path, "digest": f.digest,
                     "size": f.size, "created_at": now / 1000}
                    for f in files
                ],
            )  # fmt: skip
        if source_run_id is not None:
            _add_output_edge(s, source_run_id, row.id, now)
        s.flush()
        return self._version(s, dataset, row, project), True

    def list_datasets(self, project: str) -> list[Dataset]:
        with self._store.read() as s:
            latest = (
                select(DatasetVersionRow.dataset_id, func.max(DatasetVersionRow.version).label("v"))
                .group_by(DatasetVersionRow.dataset_id)
                .subquery()
            )
            rows = s.execute(
                select(DatasetRow, latest.c.v)
                .outerjoin(latest, latest.c.dataset_id == DatasetRow.id)
                .where(DatasetRow.project_id == _project_id(s, project))
                .order_by(DatasetRow.name)
            ).all()
            return [_dataset(r[0], project, r[1]) for r in rows]

    def list_versions(self, project: str, name: str) -> list[DatasetVersion]:
        """Every version, newest first, without files or profile."""
        with self._store.read() as s:
            dataset = _dataset_row(s, project, name)
            rows = s.scalars(
                select(DatasetVersionRow)
                .where(DatasetVersionRow.dataset_id == dataset.id)
                .order_by(DatasetVersionRow.version.desc())
            )
            return [_version_entity(dataset, r, project) for r in rows]

    def get_version(
        self,
        project: str,
        name: str,
        version: int | None,
        *,
        file_offset: int = 0,
        file_limit: int | None = None,
    ) -> DatasetVersion:
        """A version with its files and profile; ``version`` None is the latest.

        ``file_offset`` and ``file_limit`` pick a window of its files (in path order);
        ``file_count`` always counts them all.

        Raises:
            NotFound: no such project, dataset or version (the message says which).
        """
        with self._store.read() as s:
            dataset = _dataset_row(s, project, name)
            row = _version_row(s, dataset, version)
            return self._version(s, dataset, row, project, file_offset, file_limit)

    def dataset_summaries(
        self, project: str, *, offset: int = 0, limit: int = 100, recent: bool = False
    ) -> list[DatasetSummary]:
        """Datasets with their version count and latest version, by name (``recent``:
        latest version first), in one query."""
        with self._store.read() as s:
            stats = (
                select(
                    DatasetVersionRow.dataset_id,
                    func.max(DatasetVersionRow.version).label("v"),
                    func.count().label("n"),
                )
                .group_by(DatasetVersionRow.dataset_id)
                .subquery()
            )
            latest = aliased(DatasetVersionRow)
            query = (
                select(DatasetRow, stats.c.n, latest)
                .outerjoin(stats, stats.c.dataset_id == DatasetRow.id)
                .outerjoin(
                    latest, and_(latest.dataset_id == DatasetRow.id, latest.version == stats.c.v)
                )
                .where(DatasetRow.project_id == _project_id(s, project))
            )
            if recent:
                newest = latest.created_at_ms
                query = query.order_by(newest.is_(None), newest.desc(), DatasetRow.name)
            else:
                query = query.order_by(DatasetRow.name)
            rows = s.execute(query.offset(offset).limit(limit)).all()
            return [
                DatasetSummary(
                    _dataset(d, project, v.version if v is not None else None),
                    int(n or 0),
                    None if v is None else _summary(d, v, project),
                )
                for d, n, v in rows
            ]

    def version_summaries(
        self, project: str, name: str, *, offset: int = 0, limit: int = 100
    ) -> list[VersionSummary]:
        """A page of versions, newest first, without files, with their profiled rows."""
        with self._store.read() as s:
            dataset = _dataset_row(s, project, name)
            rows = s.scalars(
                select(DatasetVersionRow)
                .where(DatasetVersionRow.dataset_id == dataset.id)
                .order_by(DatasetVersionRow.version.desc())
                .offset(offset)
                .limit(limit)
            )
            return [_summary(dataset, r, project) for r in rows]

    def version_id(self, project: str, name: str, version: int | None) -> tuple[int, int]:
        """The row id and number of a version (``None``: the latest)."""
        with self._store.read() as s:
            row = _version_row(s, _dataset_row(s, project, name), version)
            return row.id, row.version

    def _version(
        self,
        s: Session,
        dataset: DatasetRow,
        row: DatasetVersionRow,
        project: str,
        file_offset: int = 0,
        file_limit: int | None = None,
    ) -> DatasetVersion:
        query = (
            select(ArtifactEntryRow)
            .where(ArtifactEntryRow.namespace == dataset_version_namespace(row.id))
            .order_by(ArtifactEntryRow.path)
        )
        if file_offset or file_limit is not None:
            query = query.offset(file_offset).limit(file_limit)
        entries = s.scalars(query)
        files = tuple(ArtifactEntry(e.path, e.digest, e.size) for e in entries)
        profile = json.loads(row.profile_json or "{}")
        return _version_entity(dataset, row, project, files, profile)


def _version_entity(
    dataset: DatasetRow,
    row: DatasetVersionRow,
    project: str,
    files: tuple[ArtifactEntry, ...] = (),
    profile: dict[str, Any] | None = None,
) -> DatasetVersion:
    return DatasetVersion(
        dataset=dataset.name,
        project=project,
        version=row.version,
        manifest_digest=row.manifest_digest,
        total_size=row.total_size,
        file_count=row.file_count,
        message=row.message,
        user=row.user,
        created_at_ms=row.created_at_ms,
        source_run_id=row.source_run_id,
        files=files,
        profile=profile or {},
    )


def _summary(dataset: DatasetRow, row: DatasetVersionRow, project: str) -> VersionSummary:
    profile = json.loads(row.profile_json or "{}")
    return VersionSummary(_version_entity(dataset, row, project), profile_rows(profile))


def _add_output_edge(s: Session, run_id: str, version_id: int, now_ms: int) -> None:
    edge = {
        "src_kind": NodeKind.RUN.value,
        "src_id": run_id,
        "dst_kind": NodeKind.DATASET_VERSION.value,
        "dst_id": str(version_id),
        "edge_type": EdgeType.OUTPUT.value,
    }
    conditions = [getattr(LineageEdgeRow, k) == v for k, v in edge.items()]
    if s.scalar(select(LineageEdgeRow.id).where(*conditions)) is None:
        s.add(LineageEdgeRow(**edge, created_at_ms=now_ms))


def _dataset(row: DatasetRow, project: str, latest: int | None) -> Dataset:
    return Dataset(row.name, project, row.description, row.created_at_ms, latest)


def _project_id(s: Session, project: str) -> str:
    found = s.scalar(select(ProjectRow.id).where(ProjectRow.name == project))
    if found is None:
        raise NotFound(f"project {project!r} does not exist")
    return found


def _find_dataset(s: Session, project: str, name: str) -> DatasetRow | None:
    return s.scalar(
        select(DatasetRow).where(
            DatasetRow.project_id == _project_id(s, project), DatasetRow.name == name
        )
    )


def _dataset_row(s: Session, project: str, name: str) -> DatasetRow:
    row = _find_dataset(s, project, name)
    if row is None:
        raise NotFound(f"dataset {name!r} does not exist in project {project!r}")
    return row


def _latest_row(s: Session, dataset_id: int) -> DatasetVersionRow | None:
    return s.scalar(
        select(DatasetVersionRow)
        .where(DatasetVersionRow.dataset_id == dataset_id)
        .order_by(DatasetVersionRow.version.desc())
        .limit(1)
    )


def _version_row(s: Session, dataset: DatasetRow, version: int | None) -> DatasetVersionRow:
    if version is None:
        row = _latest_row(s, dataset.id)
        if row is None:
            raise NotFound(f"dataset {dataset.name!r} has no versions")
        return row
    found = s.scalar(
        select(DatasetVersionRow).where(
            DatasetVersionRow.dataset_id == dataset.id, DatasetVersionRow.version == version
        )
    )
    if found is None:
        latest = _latest_row(s, dataset.id)
        hint = f" (the latest is v{latest.version})" if latest else ""
        raise NotFound(f"dataset {dataset.name!r} has no version v{version}{hint}")
    return found
