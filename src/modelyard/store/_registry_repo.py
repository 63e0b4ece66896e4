"""Persistence of registered models, versions, tags, aliases and alias history."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import AlreadyExists, Conflict, NotFound
from modelyard.core.models import AliasChange, ModelVersion, RegisteredModel, version_namespace
from modelyard.store._sql import SqlStore
from modelyard.store.registry_pages import VersionPage, model_summaries, version_page
from modelyard.store.schema import (
    AliasHistoryRow,
    ArtifactEntryRow,
    ModelAliasRow,
    ModelVersionRow,
    ModelVersionTagRow,
    ProjectRow,
    RegisteredModelRow,
    RegisteredModelTagRow,
)

_CREATE_ATTEMPTS = 5


class RegistryRepository:
    """Rows of the registry tables as frozen entities. One method, one transaction."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def _now_ms(self) -> int:
        return int(self._store.clock.now() * 1000)

    # --- registered models --------------------------------------------------------------

    def create_model(
        self, project: str, name: str, description: str = "", tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        with self._store.transaction(f"model {name!r} already exists in {project!r}") as s:
            row = self._new_model(s, project, name, description)
            for key, value in (tags or {}).items():
                s.add(RegisteredModelTagRow(model_id=row.id, key=key, value=value))
            s.flush()
            return self._model(s, row, project)

    def _new_model(
        self, s: Session, project: str, name: str, description: str
    ) -> RegisteredModelRow:
        now = self._now_ms()
        row = RegisteredModelRow(
            project_id=_project_row(s, project).id,
            name=name,
            description=description,
            created_at_ms=now,
            updated_at_ms=now,
        )
        s.add(row)
        s.flush()
        return row

    def model_id(self, project: str, name: str) -> int:
        with self._store.read() as s:
            return _model_row(s, project, name).id

    def get_model(self, project: str, name: str) -> RegisteredModel:
        with self._store.read() as s:
            return self._model(s, _model_row(s, project, name), project)

    def find_model(self, project: str, name: str) -> RegisteredModel | None:
        with self._store.read() as s:
            row = _find_model_row(s, project, name)
            return None if row is None else self._model(s, row, project)

    def list_models(self, project: str) -> list[RegisteredModel]:
        with self._store.read() as s:
            return model_summaries(s, _project_row(s, project).id, project)

    # --- versions -----------------------------------------------------------------------

    def create_version(
        self,
        project: str,
        name: str,
        *,
        source_run_id: str | None,
        source_uri: str,
        flavor: str,
        signature_json: str,
        package_digest: str,
        files: Sequence[ArtifactEntry],
        user: str,
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> ModelVersion:
        """Register the next version of ``name`` (created if new), files included, atomically.

        Concurrent registrations are serialised on the model's row, so versions are
        numbered 1, 2, 3 … with no gaps or duplicates. When several writers create the
        model itself at once, the losers retry against the winner's row.
        """
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                return self._create_version(
                    project, name, source_run_id, source_uri, flavor, signature_json,
                    package_digest, files, user, description, tags,
                )  # fmt: skip
            except AlreadyExists:
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _create_version(
        self,
        project: str,
        name: str,
        source_run_id: str | None,
        source_uri: str,
        flavor: str,
        signature_json: str,
        package_digest: str,
        files: Sequence[ArtifactEntry],
        user: str,
        description: str,
        tags: dict[str, str] | None,
    ) -> ModelVersion:
        with self._store.transaction(f"model {name!r} was registered concurrently") as s:
            model = _find_model_row(s, project, name, for_update=True)
            if model is None:
                model = self._new_model(s, project, name, "")
            latest = s.scalar(
                select(func.max(ModelVersionRow.version)).where(
                    ModelVersionRow.model_id == model.id
                )
            )
            number = (latest or 0) + 1
            now = self._now_ms()
            row = ModelVersionRow(
                model_id=model.id,
                version=number,
                source_run_id=source_run_id,
                source_uri=source_uri,
                flavor=flavor,
                signature_json=signature_json,
                package_digest=package_digest,
                status="READY",
                description=description,
                user=user,
                created_at_ms=now,
            )
            s.add(row)
            s.flush()
            model.updated_at_ms = now
            namespace = version_namespace(model.id, number)
            for entry in files:
                s.add(
                    ArtifactEntryRow(
                        namespace=namespace,
                        path=entry.path,
                        digest=entry.digest,
                        size=entry.size,
                        created_at=now / 1000,
                    )
                )
            for key, value in (tags or {}).items():
                s.add(ModelVersionTagRow(version_id=row.id, key=key, value=value))
            s.flush()
            return self._version(s, model, row, project)

    def get_version(self, project: str, name: str, version: int) -> ModelVersion:
        with self._store.read() as s:
            model = _model_row(s, project, name)
            return self._version(s, model, _version_row(s, model, version), project)

    def list_versions(self, project: str, name: str) -> list[ModelVersion]:
        with self._store.read() as s:
            model = _model_row(s, project, name)
            rows = s.scalars(
                select(ModelVersionRow)
                .where(ModelVersionRow.model_id == model.id)
                .order_by(ModelVersionRow.version)
            )
            return [self._version(s, model, r, project, with_files=False) for r in rows]

    def version_page(self, project: str, name: str, *, offset: int, limit: int) -> VersionPage:
        """Versions of ``name`` newest first, ``limit`` from ``offset``, without files."""
        with self._store.read() as s:
            model = _model_row(s, project, name)
            return version_page(s, model, project, offset=offset, limit=limit)

    def delete_version(self, project: str, name: str, version: int) -> None:
        """Delete a version no alias points to.

        Raises:
            Conflict: an alias points to it (the message names the aliases).
        """
        with self._store.transaction() as s:
            model = _model_row(s, project, name)
            row = _version_row(s, model, version)
            aliases = sorted(
                s.scalars(
                    select(ModelAliasRow.alias).where(
                        ModelAliasRow.model_id == model.id, ModelAliasRow.version == version
                    )
                )
            )
            if aliases:
                raise Conflict(
                    f"version {version} of {name!r} is used by alias "
                    f"{', '.join(repr(a) for a in aliases)}: move the alias first"
                )
            s.execute(
                delete(ArtifactEntryRow).where(
                    ArtifactEntryRow.namespace == version_namespace(model.id, version)
                )
            )
            s.delete(row)

    # --- aliases ------------------------------------------------------------------------

    def set_alias(
        self, project: str, name: str, alias: str, version: int, user: str
    ) -> AliasChange:
        """Point ``alias`` at ``version`` and record the move, in one transaction."""
        with self._store.transaction() as s:
            model = _find_model_row(s, project, name, for_update=True)
            if model is None:
                raise NotFound(f"model {name!r} does not exist in {project!r}")
            _version_row(s, model, version)
            row = s.get(ModelAliasRow, (model.id, alias))
            previous = row.version if row else None
            if row is None:
                s.add(ModelAliasRow(model_id=model.id, alias=alias, version=version))
            else:
                row.version = version
            return self._record(s, model, alias, previous, version, user)

    def delete_alias(self, project: str, name: str, alias: str, user: str) -> AliasChange:
        with self._store.transaction() as s:
            model = _model_row(s, project, name)
            row = s.get(ModelAliasRow, (model.id, alias))
            if row is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            previous = row.version
            s.delete(row)
            return self._record(s, model, alias, previous, None, user)

    def version_by_alias(self, project: str, name: str, alias: str) -> ModelVersion:
        with self._store.read() as s:
            model = _model_row(s, project, name)
            row = s.get(ModelAliasRow, (model.id, alias))
            if row is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            return self._version(s, model, _version_row(s, model, row.version), project)

    def alias_history(self, project: str, name: str) -> list[AliasChange]:
        with self._store.read() as s:
            model = _model_row(s, project, name)
            rows = s.scalars(
                select(AliasHistoryRow)
                .where(AliasHistoryRow.model_id == model.id)
                .order_by(AliasHistoryRow.id)
            )
            return [
                AliasChange(name, r.alias, r.from_version, r.to_version, r.user, r.timestamp_ms)
                for r in rows
            ]

    def _record(
        self,
        s: Session,
        model: RegisteredModelRow,
        alias: str,
        previous: int | None,
        new: int | None,
        user: str,
    ) -> AliasChange:
        now = self._now_ms()
        s.add(
            AliasHistoryRow(
                model_id=model.id,
                alias=alias,
                from_version=previous,
                to_version=new,
                user=user,
                timestamp_ms=now,
            )
        )
        model.updated_at_ms = now
        return AliasChange(model.name, alias, previous, new, user, now)

    # --- entity builders ----------------------------------------------------------------

    @staticmethod
    def _model(s: Session, row: RegisteredModelRow, project: str) -> RegisteredModel:
        tags = {
            t.key: t.value
            for t in s.scalars(
                select(RegisteredModelTagRow).where(RegisteredModelTagRow.model_id == row.id)
            )
        }
        aliases = {
            a.alias: a.version
            for a in s.scalars(select(ModelAliasRow).where(ModelAliasRow.model_id == row.id))
        }
        latest = s.scalar(
            select(func.max(ModelVersionRow.version)).where(ModelVersionRow.model_id == row.id)
        )
        return RegisteredModel(
            name=row.name,
            project=project,
            description=row.description,
            created_at_ms=row.created_at_ms,
            updated_at_ms=row.updated_at_ms,
            tags=tags,
            aliases=aliases,
            latest_version=latest,
        )

    @staticmethod
    def _version(
        s: Session,
        model: RegisteredModelRow,
        row: ModelVersionRow,
        project: str,
        *,
        with_files: bool = True,
    ) -> ModelVersion:
        aliases = tuple(
            sorted(
                s.scalars(
                    select(ModelAliasRow.alias).where(
                        ModelAliasRow.model_id == model.id, ModelAliasRow.version == row.version
                    )
                )
            )
        )
        tags = {
            t.key: t.value
            for t in s.scalars(
                select(ModelVersionTagRow).where(ModelVersionTagRow.version_id == row.id)
            )
        }
        files: tuple[ArtifactEntry, ...] = ()
        if with_files:
            files = tuple(
                ArtifactEntry(e.path, e.digest, e.size)
                for e in s.scalars(
                    select(ArtifactEntryRow)
                    .where(ArtifactEntryRow.namespace == version_namespace(model.id, row.version))
                    .order_by(ArtifactEntryRow.path)
                )
            )
        return ModelVersion(
            model=model.name,
            project=project,
            version=row.version,
            source_run_id=row.source_run_id,
            source_uri=row.source_uri,
            flavor=row.flavor,
            signature_json=row.signature_json,
            package_digest=row.package_digest,
            status=row.status,
            description=row.description,
            user=row.user,
            created_at_ms=row.created_at_ms,
            aliases=aliases,
            tags=tags,
            files=files,
        )


def _project_row(s: Session, name: str) -> ProjectRow:
    row = s.scalar(select(ProjectRow).where(ProjectRow.name == name))
    if row is None:
        raise NotFound(f"project {name!r} does not exist")
    return row


def _find_model_row(
    s: Session, project: str, name: str, *, for_update: bool = False
) -> RegisteredModelRow | None:
    query = select(RegisteredModelRow).where(
        RegisteredModelRow.project_id == _project_row(s, project).id,
        RegisteredModelRow.name == name,
    )
    if for_update:
        query = query.with_for_update()
    return s.scalar(query)


def _model_row(s: Session, project: str, name: str) -> RegisteredModelRow:
    row = _find_model_row(s, project, name)
    if row is None:
        raise NotFound(f"model {name!r} does not exist in project {project!r}")
    return row


def _version_row(s: Session, model: RegisteredModelRow, version: int) -> ModelVersionRow:
    row = s.scalar(
        select(ModelVersionRow).where(
            ModelVersionRow.model_id == model.id, ModelVersionRow.version == version
        )
    )
    if row is None:
        raise NotFound(f"model {model.name!r} has no version {version}")
    return row
