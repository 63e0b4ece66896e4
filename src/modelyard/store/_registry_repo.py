"""Persistence of registered models, versions, tags, aliases, stages and alias history.

Renames and deletes keep the registry's invariants: no alias ever points to a missing
version, and nothing a live deployment serves (or would roll back to) is renamed or
deleted under it: those are refused with ``Conflict`` naming the alias or deployment.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from modelyard.core.models import AliasChange, ModelVersion, RegisteredModel, version_namespace
from modelyard.store._sql import SqlStore
from modelyard.store.registry_pages import (
    STAGES,
    ModelHit,
    VersionPage,
    latest_by_stage,
    model_summaries,
    models_of,
    version_page,
    versions_of,
)
from modelyard.store.registry_search import (
    Clause,
    Order,
    model_conditions,
    model_ordering,
    version_conditions,
    version_ordering,
)
from modelyard.store.schema import (
    AliasHistoryRow,
    ArtifactEntryRow,
    DeploymentRevisionRow,
    DeploymentRow,
    ModelAliasRow,
    ModelVersionRow,
    ModelVersionTagRow,
    ProjectRow,
    RegisteredModelRow,
    RegisteredModelTagRow,
)

_CREATE_ATTEMPTS = 5
_LIVE_REVISION_STATES = ("pending", "ready")


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

    # --- changes to models (MLflow's registry surface) -----------------------------------

    def update_model(self, project: str, name: str, description: str) -> RegisteredModel:
        """Set the model's description."""
        with self._store.transaction() as s:
            row = _model_row(s, project, name)
            row.description = description
            row.updated_at_ms = self._now_ms()
            s.flush()
            return self._model(s, row, project)

    def rename_model(self, project: str, name: str, new_name: str) -> RegisteredModel:
        """Rename the model; versions, tags, aliases and history follow (they key on its id).

        Raises:
            NotFound: no model ``name``.
            AlreadyExists: ``new_name`` is taken in the project.
            Conflict: a live deployment serves a version of it (its revisions name it).
        """
        with self._store.transaction(f"model {new_name!r} already exists in {project!r}") as s:
            row = _find_model_row(s, project, name, for_update=True)
            if row is None:
                raise NotFound(f"model {name!r} does not exist in project {project!r}")
            if new_name == name:
                return self._model(s, row, project)
            if _find_model_row(s, project, new_name) is not None:
                raise AlreadyExists(f"model {new_name!r} already exists in {project!r}")
            deployments = _deployments_using(s, row, None)
            if deployments:
                raise Conflict(
                    f"model {name!r} is served by deployment "
                    f"{', '.join(repr(d) for d in deployments)}: delete or move it first"
                )
            row.name = new_name
            row.updated_at_ms = self._now_ms()
            s.flush()
            return self._model(s, row, project)

    def delete_model(self, project: str, name: str) -> None:
        """Delete the model with its versions, their files' index rows, tags and aliases.

        Raises:
            NotFound: no model ``name``.
            Conflict: a live deployment serves a version of it.
        """
        with self._store.transaction() as s:
            row = _find_model_row(s, project, name, for_update=True)
            if row is None:
                raise NotFound(f"model {name!r} does not exist in project {project!r}")
            deployments = _deployments_using(s, row, None)
            if deployments:
                raise Conflict(
                    f"model {name!r} is served by deployment "
                    f"{', '.join(repr(d) for d in deployments)}: delete or move it first"
                )
            numbers = list(
                s.scalars(select(ModelVersionRow.version).where(ModelVersionRow.model_id == row.id))
            )
            namespaces = [version_namespace(row.id, n) for n in numbers]
            for start in range(0, len(namespaces), 500):
                s.execute(
                    delete(ArtifactEntryRow).where(
                        ArtifactEntryRow.namespace.in_(namespaces[start : start + 500])
                    )
                )
            version_ids = select(ModelVersionRow.id).where(ModelVersionRow.model_id == row.id)
            s.execute(
                delete(ModelVersionTagRow).where(ModelVersionTagRow.version_id.in_(version_ids))
            )
            s.execute(delete(ModelVersionRow).where(ModelVersionRow.model_id == row.id))
            s.execute(delete(ModelAliasRow).where(ModelAliasRow.model_id == row.id))
            s.execute(delete(AliasHistoryRow).where(AliasHistoryRow.model_id == row.id))
            s.execute(delete(RegisteredModelTagRow).where(RegisteredModelTagRow.model_id == row.id))
            s.execute(delete(RegisteredModelRow).where(RegisteredModelRow.id == row.id))

    def set_model_tag(self, project: str, name: str, key: str, value: str) -> None:
        with self._store.transaction() as s:
            row = _model_row(s, project, name)
            tag = s.get(RegisteredModelTagRow, (row.id, key))
            if tag is None:
                s.add(RegisteredModelTagRow(model_id=row.id, key=key, value=value))
            else:
                tag.value = value

    def delete_model_tag(self, project: str, name: str, key: str) -> None:
        """Remove the tag; an absent tag is a no-op (the model must exist)."""
        with self._store.transaction() as s:
            row = _model_row(s, project, name)
            s.execute(
                delete(RegisteredModelTagRow).where(
                    RegisteredModelTagRow.model_id == row.id, RegisteredModelTagRow.key == key
                )
            )

    # --- changes to versions (MLflow's registry surface) ---------------------------------

    def update_version(
        self, project: str, name: str, version: int, description: str
    ) -> ModelVersion:
        with self._store.transaction() as s:
            model = _model_row(s, project, name)
            row = _version_row(s, model, version)
            row.description = description
            row.updated_at_ms = self._now_ms()
            s.flush()
            return self._version(s, model, row, project, with_files=False)

    def transition_stage(
        self, project: str, name: str, version: int, stage: str, *, archive_existing: bool
    ) -> ModelVersion:
        """Move the version to ``stage`` (one of ``STAGES``); with ``archive_existing``, the
        model's other versions in that stage move to ``Archived``, in the same transaction."""
        if stage not in STAGES:
            raise InvalidStage(stage)
        with self._store.transaction() as s:
            model = _find_model_row(s, project, name, for_update=True)
            if model is None:
                raise NotFound(f"model {name!r} does not exist in project {project!r}")
            row = _version_row(s, model, version)
            now = self._now_ms()
            if archive_existing:
                others = s.scalars(
                    select(ModelVersionRow).where(
                        ModelVersionRow.model_id == model.id,
                        ModelVersionRow.current_stage == stage,
                        ModelVersionRow.version != version,
                    )
                )
                for other in others:
                    other.current_stage = "Archived"
                    other.updated_at_ms = now
            row.current_stage = stage
            row.updated_at_ms = now
            model.updated_at_ms = now
            s.flush()
            return self._version(s, model, row, project, with_files=False)

    def set_version_tag(self, project: str, name: str, version: int, key: str, value: str) -> None:
        with self._store.transaction() as s:
            row = _version_row(s, _model_row(s, project, name), version)
            tag = s.get(ModelVersionTagRow, (row.id, key))
            if tag is None:
                s.add(ModelVersionTagRow(version_id=row.id, key=key, value=value))
            else:
                tag.value = value

    def delete_version_tag(self, project: str, name: str, version: int, key: str) -> None:
        """Remove the tag; an absent tag is a no-op (the version must exist)."""
        with self._store.transaction() as s:
            row = _version_row(s, _model_row(s, project, name), version)
            s.execute(
                delete(ModelVersionTagRow).where(
                    ModelVersionTagRow.version_id == row.id, ModelVersionTagRow.key == key
                )
            )

    def latest_versions(
        self, project: str, name: str, stages: set[str] | None = None
    ) -> tuple[ModelVersion, ...]:
        """The newest version in each of ``stages`` (every stage if ``None``), without files."""
        with self._store.read() as s:
            model = _model_row(s, project, name)
            return latest_by_stage(s, [model], project, stages)[model.id]

    # --- MLflow searches ----------------------------------------------------------------

    def search_models(
        self, project: str, clauses: list[Clause], orders: list[Order], *, offset: int, limit: int
    ) -> tuple[list[ModelHit], bool]:
        """One page of the project's models matching ``clauses``, and whether more follow."""
        with self._store.read() as s:
            conditions = model_conditions(clauses, _dialect(s))
            rows = list(
                s.scalars(
                    select(RegisteredModelRow)
                    .where(RegisteredModelRow.project_id == _project_row(s, project).id)
                    .where(*conditions)
                    .order_by(*model_ordering(orders))
                    .offset(offset)
                    .limit(limit + 1)
                )
            )
            more, rows = len(rows) > limit, rows[:limit]
            latest = latest_by_stage(s, rows, project)
            hits = [
                ModelHit(m, latest[r.id])
                for m, r in zip(models_of(s, rows, project), rows, strict=True)
            ]
            return hits, more

    def search_versions(
        self, project: str, clauses: list[Clause], orders: list[Order], *, offset: int, limit: int
    ) -> tuple[list[ModelVersion], bool]:
        """One page of the project's versions matching ``clauses``, and whether more follow."""
        with self._store.read() as s:
            conditions = version_conditions(clauses, _dialect(s))
            found = s.execute(
                select(ModelVersionRow, RegisteredModelRow.name)
                .join(RegisteredModelRow, RegisteredModelRow.id == ModelVersionRow.model_id)
                .where(RegisteredModelRow.project_id == _project_row(s, project).id)
                .where(*conditions)
                .order_by(*version_ordering(orders))
                .offset(offset)
                .limit(limit + 1)
            ).all()
            more = len(found) > limit
            rows = [row for row, _name in found[:limit]]
            names = {row.model_id: model_name for row, model_name in found[:limit]}
            return versions_of(s, rows, names, project), more

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
        """Delete a version no alias and no live deployment points to.

        Raises:
            Conflict: an alias points to it, or a live deployment serves it (or would roll
                back to it); the message names the aliases or deployments.
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
            deployments = _deployments_using(s, model, version)
            if deployments:
                raise Conflict(
                    f"version {version} of {name!r} is served by deployment "
                    f"{', '.join(repr(d) for d in deployments)}: roll it forward or delete it "
                    "first"
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
            stage=row.current_stage,
            updated_at_ms=row.updated_at_ms,
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


class InvalidStage(InvalidInput):
    """A stage other than MLflow's None, Staging, Production and Archived."""

    def __init__(self, stage: str) -> None:
        super().__init__(
            f"Invalid Model Version stage: {stage}. Value must be one of " + ", ".join(STAGES) + "."
        )


def _dialect(s: Session) -> str:
    return s.get_bind().dialect.name


def _deployments_using(s: Session, model: RegisteredModelRow, version: int | None) -> list[str]:
    """Names of live deployments of the model's project that serve ``version`` of it (any
    version if ``None``) or keep it as their stable or rollback revision."""
    serving: ColumnElement[bool] = or_(
        DeploymentRevisionRow.state.in_(_LIVE_REVISION_STATES),
        DeploymentRevisionRow.number == DeploymentRow.stable_revision,
        DeploymentRevisionRow.number == DeploymentRow.previous_stable,
    )
    query = (
        select(DeploymentRow.name)
        .join(DeploymentRevisionRow, DeploymentRevisionRow.deployment_id == DeploymentRow.id)
        .where(
            DeploymentRow.project_id == model.project_id,
            DeploymentRow.status != "deleted",
            DeploymentRevisionRow.model_name == model.name,
            serving,
        )
        .distinct()
        .order_by(DeploymentRow.name)
    )
    if version is not None:
        query = query.where(DeploymentRevisionRow.model_version == version)
    return list(s.scalars(query))
