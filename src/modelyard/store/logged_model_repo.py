"""Persistence of MLflow 3 logged models: a model's row, its tags and its params.

A logged model belongs to an experiment (and so to that experiment's project), usually
to a run, and has its files in the artifact namespace ``logged-model:<id>``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from modelyard.core.errors import NotFound
from modelyard.store._sql import SqlStore
from modelyard.store.schema import (
    ArtifactEntryRow,
    ExperimentRow,
    LoggedModelParamRow,
    LoggedModelRow,
    LoggedModelTagRow,
    ProjectRow,
)

PENDING, READY = "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY"


@dataclass(frozen=True)
class LoggedModel:
    """A logged model as stored; times are epoch ms, ``status`` is MLflow's enum name."""

    id: str
    experiment_id: int
    project: str
    name: str
    model_type: str
    source_run_id: str | None
    status: str
    status_message: str
    user: str
    created_at_ms: int
    updated_at_ms: int
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


def new_logged_model_id() -> str:
    """A fresh id in MLflow's shape: ``m-`` and 32 hex digits."""
    return f"m-{uuid.uuid4().hex}"


def logged_model_namespace(model_id: str) -> str:
    """The artifact namespace holding a logged model's files."""
    return f"logged-model:{model_id}"


class LoggedModelRepository:
    """Rows of the logged-model tables as frozen entities. One method, one transaction."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def _now_ms(self) -> int:
        return int(self._store.clock.now() * 1000)

    def create(
        self,
        *,
        experiment_id: int,
        name: str,
        model_type: str,
        source_run_id: str | None,
        user: str,
        tags: Mapping[str, str],
        params: Mapping[str, str],
    ) -> LoggedModel:
        """Create a PENDING logged model with a fresh id.

        Raises:
            NotFound: the experiment does not exist.
        """
        with self._store.transaction() as s:
            if s.get(ExperimentRow, experiment_id) is None:
                raise NotFound(f"experiment {experiment_id} does not exist")
            now = self._now_ms()
            row = LoggedModelRow(
                id=new_logged_model_id(),
                experiment_id=experiment_id,
                name=name,
                model_type=model_type,
                source_run_id=source_run_id,
                status=PENDING,
                status_message="",
                user=user,
                created_at_ms=now,
                updated_at_ms=now,
            )
            s.add(row)
            s.flush()
            for key, value in tags.items():
                s.add(LoggedModelTagRow(model_id=row.id, key=key, value=value))
            for key, value in params.items():
                s.add(LoggedModelParamRow(model_id=row.id, key=key, value=value))
            s.flush()
            return _entity(s, row)

    def get(self, model_id: str) -> LoggedModel:
        """The logged model ``model_id``.

        Raises:
            NotFound: no logged model has that id.
        """
        with self._store.read() as s:
            return _entity(s, _row(s, model_id))

    def project_of(self, model_id: str) -> str:
        """The project of the logged model's experiment.

        Raises:
            NotFound: no logged model has that id.
        """
        with self._store.read() as s:
            found = s.execute(
                select(ProjectRow.name)
                .join(ExperimentRow, ExperimentRow.project_id == ProjectRow.id)
                .join(LoggedModelRow, LoggedModelRow.experiment_id == ExperimentRow.id)
                .where(LoggedModelRow.id == model_id)
            ).first()
            if found is None:
                raise NotFound(f"logged model {model_id!r} does not exist")
            return str(found[0])

    def set_status(self, model_id: str, status: str, message: str = "") -> LoggedModel:
        """Set the model's status (finalizing it), with an optional message."""
        with self._store.transaction() as s:
            row = _row(s, model_id)
            row.status, row.status_message = status, message
            row.updated_at_ms = self._now_ms()
            return _entity(s, row)

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> LoggedModel:
        """Set (or overwrite) tags of the model."""
        with self._store.transaction() as s:
            row = _row(s, model_id)
            _upsert(s, LoggedModelTagRow, model_id, tags)
            row.updated_at_ms = self._now_ms()
            return _entity(s, row)

    def delete_tag(self, model_id: str, key: str) -> None:
        """Remove one tag.

        Raises:
            NotFound: the model or the tag does not exist.
        """
        with self._store.transaction() as s:
            row = _row(s, model_id)
            tag = s.get(LoggedModelTagRow, (model_id, key))
            if tag is None:
                raise NotFound(f"logged model {model_id!r} has no tag {key!r}")
            s.delete(tag)
            row.updated_at_ms = self._now_ms()

    def delete(self, model_id: str) -> None:
        """Remove the model, its tags and params and its files' index, in one transaction.

        The blobs stay until garbage collection finds them unreferenced; registered
        versions made from the model keep their own index and are unaffected.

        Raises:
            NotFound: no logged model has that id.
        """
        with self._store.transaction() as s:
            row = _row(s, model_id)
            s.execute(
                delete(ArtifactEntryRow).where(
                    ArtifactEntryRow.namespace == logged_model_namespace(model_id)
                )
            )
            s.execute(delete(LoggedModelTagRow).where(LoggedModelTagRow.model_id == model_id))
            s.execute(delete(LoggedModelParamRow).where(LoggedModelParamRow.model_id == model_id))
            s.delete(row)

    def log_params(self, model_id: str, params: Mapping[str, str]) -> None:
        """Record params of the model (a re-logged key keeps its latest value)."""
        with self._store.transaction() as s:
            row = _row(s, model_id)
            _upsert(s, LoggedModelParamRow, model_id, params)
            row.updated_at_ms = self._now_ms()

    def search(
        self,
        experiment_ids: Sequence[int],
        *,
        equals: Mapping[str, str] | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[LoggedModel], bool]:
        """Logged models of the experiments, newest first.

        Args:
            experiment_ids: The experiments searched.
            equals: Attribute conditions, ``{column: value}`` over ``name``,
                ``source_run_id``, ``status``, ``model_type`` and ``id``.
            offset: How many matches to skip (pagination).
            limit: The most models returned.

        Returns:
            The page of models, and whether more matches follow it.
        """
        columns = {
            "name": LoggedModelRow.name,
            "source_run_id": LoggedModelRow.source_run_id,
            "status": LoggedModelRow.status,
            "model_type": LoggedModelRow.model_type,
            "id": LoggedModelRow.id,
        }
        query = select(LoggedModelRow).where(LoggedModelRow.experiment_id.in_(experiment_ids))
        for column, value in (equals or {}).items():
            query = query.where(columns[column] == value)
        query = query.order_by(LoggedModelRow.created_at_ms.desc(), LoggedModelRow.id)
        with self._store.read() as s:
            rows = list(s.scalars(query.offset(offset).limit(limit + 1)))
            return [_entity(s, r) for r in rows[:limit]], len(rows) > limit


def _upsert(
    s: Session,
    table: type[LoggedModelTagRow] | type[LoggedModelParamRow],
    model_id: str,
    items: Mapping[str, str],
) -> None:
    for key, value in items.items():
        existing = cast(
            LoggedModelTagRow | LoggedModelParamRow | None, s.get(table, (model_id, key))
        )
        if existing is None:
            s.add(table(model_id=model_id, key=key, value=value))
        else:
            existing.value = value


def _row(s: Session, model_id: str) -> LoggedModelRow:
    row = s.get(LoggedModelRow, model_id)
    if row is None:
        raise NotFound(f"logged model {model_id!r} does not exist")
    return row


def _entity(s: Session, row: LoggedModelRow) -> LoggedModel:
    project = s.scalar(
        select(ProjectRow.name)
        .join(ExperimentRow, ExperimentRow.project_id == ProjectRow.id)
        .where(ExperimentRow.id == row.experiment_id)
    )
    tags = s.scalars(select(LoggedModelTagRow).where(LoggedModelTagRow.model_id == row.id))
    params = s.scalars(select(LoggedModelParamRow).where(LoggedModelParamRow.model_id == row.id))
    return LoggedModel(
        id=row.id,
        experiment_id=row.experiment_id,
        project=str(project or ""),
        name=row.name,
        model_type=row.model_type,
        source_run_id=row.source_run_id,
        status=row.status,
        status_message=row.status_message,
        user=row.user,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        tags={t.key: t.value for t in tags},
        params={p.key: p.value for p in params},
    )
