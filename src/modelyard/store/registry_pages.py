"""Registry reads for listings: every model of a project, or one page of a model's
versions, each in a fixed number of queries however many rows there are (not a query
per model or per version for its tags and aliases)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelyard.core.models import ModelVersion, RegisteredModel
from modelyard.store.schema import (
    ExperimentRow,
    ModelAliasRow,
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelRow,
    RegisteredModelTagRow,
    RunRow,
)


@dataclass(frozen=True)
class VersionPage:
    """Versions of one model, newest first, without their file lists.

    Attributes:
        versions: at most the page's ``limit`` versions.
        total: how many versions the model has.
        run_names: the names of the source runs of these versions, for runs in the
            model's own project (a run elsewhere is left out: its id is all it shows).
    """

    versions: tuple[ModelVersion, ...]
    total: int
    run_names: dict[str, str]


def model_summaries(s: Session, project_id: str, project: str) -> list[RegisteredModel]:
    """The project's models by name, with tags, aliases and latest version (4 queries)."""
    rows = list(
        s.scalars(
            select(RegisteredModelRow)
            .where(RegisteredModelRow.project_id == project_id)
            .order_by(RegisteredModelRow.name)
        )
    )
    ids = [r.id for r in rows]
    tags: dict[int, dict[str, str]] = {i: {} for i in ids}
    aliases: dict[int, dict[str, int]] = {i: {} for i in ids}
    latest: dict[int, int] = {}
    if ids:
        tag_rows = s.scalars(
            select(RegisteredModelTagRow).where(RegisteredModelTagRow.model_id.in_(ids))
        )
        for t in tag_rows:
            tags[t.model_id][t.key] = t.value
        alias_rows = s.scalars(
            select(ModelAliasRow)
            .where(ModelAliasRow.model_id.in_(ids))
            .order_by(ModelAliasRow.alias)
        )
        for a in alias_rows:
            aliases[a.model_id][a.alias] = a.version
        newest = s.execute(
            select(ModelVersionRow.model_id, func.max(ModelVersionRow.version))
            .where(ModelVersionRow.model_id.in_(ids))
            .group_by(ModelVersionRow.model_id)
        )
        latest = {int(model_id): int(version) for model_id, version in newest}
    return [
        RegisteredModel(
            name=r.name,
            project=project,
            description=r.description,
            created_at_ms=r.created_at_ms,
            updated_at_ms=r.updated_at_ms,
            tags=tags[r.id],
            aliases=aliases[r.id],
            latest_version=latest.get(r.id),
        )
        for r in rows
    ]


def version_page(
    s: Session, model: RegisteredModelRow, project: str, *, offset: int, limit: int
) -> VersionPage:
    """Versions ``offset .. offset + limit`` of ``model``, newest first (5 queries)."""
    total = int(
        s.scalar(
            select(func.count())
            .select_from(ModelVersionRow)
            .where(ModelVersionRow.model_id == model.id)
        )
        or 0
    )
    rows = list(
        s.scalars(
            select(ModelVersionRow)
            .where(ModelVersionRow.model_id == model.id)
            .order_by(ModelVersionRow.version.desc())
            .offset(offset)
            .limit(limit)
        )
    )
    by_version: dict[int, list[str]] = {}
    for alias, version in s.execute(
        select(ModelAliasRow.alias, ModelAliasRow.version)
        .where(ModelAliasRow.model_id == model.id)
        .order_by(ModelAliasRow.alias)
    ):
        by_version.setdefault(int(version), []).append(alias)
    tags: dict[int, dict[str, str]] = {r.id: {} for r in rows}
    if rows:
        tag_rows = s.scalars(
            select(ModelVersionTagRow).where(ModelVersionTagRow.version_id.in_(list(tags)))
        )
        for t in tag_rows:
            tags[t.version_id][t.key] = t.value
    run_ids = sorted({r.source_run_id for r in rows if r.source_run_id})
    run_names: dict[str, str] = {}
    if run_ids:
        found = s.execute(
            select(RunRow.id, RunRow.name)
            .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
            .where(RunRow.id.in_(run_ids), ExperimentRow.project_id == model.project_id)
        )
        run_names = {str(run_id): str(name) for run_id, name in found}
    versions = tuple(
        ModelVersion(
            model=model.name,
            project=project,
            version=r.version,
            source_run_id=r.source_run_id,
            source_uri=r.source_uri,
            flavor=r.flavor,
            signature_json=r.signature_json,
            package_digest=r.package_digest,
            status=r.status,
            description=r.description,
            user=r.user,
            created_at_ms=r.created_at_ms,
            aliases=tuple(by_version.get(r.version, ())),
            tags=tags[r.id],
        )
        for r in rows
    )
    return VersionPage(versions, total, run_names)
