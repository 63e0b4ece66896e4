"""Registry reads for listings: every model of a project, one page of a model's versions,
or the hits of an MLflow registry search, each in a fixed number of queries however many
rows there are (not a query per model or per version for its tags and aliases)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
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


STAGES = ("None", "Staging", "Production", "Archived")


@dataclass(frozen=True)
class ModelHit:
    """A registered model with the newest version of each stage (MLflow's latest_versions)."""

    model: RegisteredModel
    latest: tuple[ModelVersion, ...]


def model_summaries(s: Session, project_id: str, project: str) -> list[RegisteredModel]:
    """The project's models by name, with tags, aliases and latest version (4 queries)."""
    rows = list(
        s.scalars(
            select(RegisteredModelRow)
            .where(RegisteredModelRow.project_id == project_id)
            .order_by(RegisteredModelRow.name)
        )
    )
    return models_of(s, rows, project)


def models_of(s: Session, rows: list[RegisteredModelRow], project: str) -> list[RegisteredModel]:
    """``rows`` as entities, in their order, with tags, aliases and latest version (3 queries)."""
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
            stage=r.current_stage,
            updated_at_ms=r.updated_at_ms,
        )
        for r in rows
    )
    return VersionPage(versions, total, run_names)


def versions_of(
    s: Session, rows: list[ModelVersionRow], names: dict[int, str], project: str
) -> list[ModelVersion]:
    """Version ``rows`` (``names``: model id → model name) as entities without files,
    in their order, with tags and aliases (2 queries)."""
    if not rows:
        return []
    model_ids = sorted({r.model_id for r in rows})
    aliases: dict[tuple[int, int], list[str]] = {}
    for a in s.scalars(
        select(ModelAliasRow)
        .where(ModelAliasRow.model_id.in_(model_ids))
        .order_by(ModelAliasRow.alias)
    ):
        aliases.setdefault((a.model_id, a.version), []).append(a.alias)
    tags: dict[int, dict[str, str]] = {r.id: {} for r in rows}
    for t in s.scalars(
        select(ModelVersionTagRow).where(ModelVersionTagRow.version_id.in_(list(tags)))
    ):
        tags[t.version_id][t.key] = t.value
    return [
        ModelVersion(
            model=names[r.model_id],
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
            aliases=tuple(aliases.get((r.model_id, r.version), ())),
            tags=tags[r.id],
            stage=r.current_stage,
            updated_at_ms=r.updated_at_ms,
        )
        for r in rows
    ]


def latest_by_stage(
    s: Session, models: list[RegisteredModelRow], project: str, stages: set[str] | None = None
) -> dict[int, tuple[ModelVersion, ...]]:
    """Model id → the newest version in each stage (of ``stages``, else every stage), in
    the order None, Staging, Production, Archived (4 queries)."""
    out: dict[int, tuple[ModelVersion, ...]] = {m.id: () for m in models}
    if not models:
        return out
    wanted = set(STAGES) if stages is None else stages
    newest = [
        (int(model_id), int(version))
        for model_id, stage, version in s.execute(
            select(
                ModelVersionRow.model_id,
                ModelVersionRow.current_stage,
                func.max(ModelVersionRow.version),
            )
            .where(ModelVersionRow.model_id.in_(list(out)))
            .group_by(ModelVersionRow.model_id, ModelVersionRow.current_stage)
        )
        if stage in wanted
    ]
    if not newest:
        return out
    rows = list(
        s.scalars(
            select(ModelVersionRow).where(
                or_(
                    *(
                        and_(ModelVersionRow.model_id == m, ModelVersionRow.version == v)
                        for m, v in newest
                    )
                )
            )
        )
    )
    rank = {stage: i for i, stage in enumerate(STAGES)}
    rows.sort(key=lambda r: (rank.get(r.current_stage, len(STAGES)), r.version))
    names = {m.id: m.name for m in models}
    grouped: dict[int, list[ModelVersion]] = {}
    for version, row in zip(versions_of(s, rows, names, project), rows, strict=True):
        grouped.setdefault(row.model_id, []).append(version)
    out.update({model_id: tuple(found) for model_id, found in grouped.items()})
    return out
