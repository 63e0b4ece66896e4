"""Persistence of the lineage graph: stored edges plus edges derived from other tables.

``produced`` edges (run → model version) are read from ``model_versions.source_run_id``
instead of being copied, so every registered version has one whichever API registered it.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from modelyard.core.lineage import Direction, Edge, EdgeType, Node, NodeKey, NodeKind
from modelyard.store._sql import SqlStore
from modelyard.store.schema import (
    DatasetRow,
    DatasetVersionRow,
    ExperimentRow,
    LineageEdgeRow,
    ModelVersionRow,
    ProjectRow,
    RegisteredModelRow,
    RunRow,
)


class LineageRepository:
    """Edges and node descriptions. Thread-safe; one method, one transaction."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def add_edge(self, edge: Edge) -> bool:
        """Store ``edge``; adding an edge that exists already is a no-op.

        Returns:
            Whether the edge was new.
        """
        with self._store.transaction("edge exists") as s:
            if _edge_exists(s, edge):
                return False
            s.add(
                LineageEdgeRow(
                    src_kind=edge.src.kind.value,
                    src_id=edge.src.id,
                    dst_kind=edge.dst.kind.value,
                    dst_id=edge.dst.id,
                    edge_type=edge.type.value,
                    created_at_ms=int(self._store.clock.now() * 1000),
                )
            )
            return True

    def edges(self, frontier: Collection[NodeKey], direction: Direction) -> list[Edge]:
        """Edges ending at (``UP``) or starting from (``DOWN``) a node of ``frontier``."""
        if not frontier or direction is Direction.BOTH:
            return []
        with self._store.read() as s:
            return _stored_edges(s, frontier, direction) + _produced_edges(s, frontier, direction)

    def describe(self, keys: Collection[NodeKey]) -> dict[NodeKey, Node]:
        """Labels and projects of nodes; a node whose record is gone is marked missing."""
        with self._store.read() as s:
            found: dict[NodeKey, Node] = {}
            found.update(_describe_datasets(s, _ids(keys, NodeKind.DATASET_VERSION)))
            found.update(_describe_runs(s, [k.id for k in keys if k.kind is NodeKind.RUN]))
            found.update(_describe_models(s, _ids(keys, NodeKind.MODEL_VERSION)))
        for key in keys:
            if key.kind is NodeKind.DEPLOYMENT:
                project, _, _name = key.id.rpartition("/")
                found[key] = Node(key, key.id, project or None)
            elif key not in found:
                found[key] = Node(key, f"{key} (deleted)", None, {"missing": True})
        return found

    def dataset_version_key(self, version_id: int) -> NodeKey:
        return NodeKey(NodeKind.DATASET_VERSION, str(version_id))

    def model_version_key(self, project: str, model: str, version: int) -> NodeKey | None:
        """The node of a registered model version, or None if there is none."""
        with self._store.read() as s:
            row_id = s.scalar(
                select(ModelVersionRow.id)
                .join(RegisteredModelRow, RegisteredModelRow.id == ModelVersionRow.model_id)
                .join(ProjectRow, ProjectRow.id == RegisteredModelRow.project_id)
                .where(
                    ProjectRow.name == project,
                    RegisteredModelRow.name == model,
                    ModelVersionRow.version == version,
                )
            )
        return None if row_id is None else NodeKey(NodeKind.MODEL_VERSION, str(row_id))


def _ids(keys: Collection[NodeKey], kind: NodeKind) -> list[int]:
    return [int(k.id) for k in keys if k.kind is kind and k.id.isdigit()]


def _edge_exists(s: Session, edge: Edge) -> bool:
    return (
        s.scalar(
            select(LineageEdgeRow.id).where(
                LineageEdgeRow.src_kind == edge.src.kind.value,
                LineageEdgeRow.src_id == edge.src.id,
                LineageEdgeRow.dst_kind == edge.dst.kind.value,
                LineageEdgeRow.dst_id == edge.dst.id,
                LineageEdgeRow.edge_type == edge.type.value,
            )
        )
        is not None
    )


def _stored_edges(s: Session, frontier: Collection[NodeKey], direction: Direction) -> list[Edge]:
    kind_col, id_col = (
        (LineageEdgeRow.dst_kind, LineageEdgeRow.dst_id)
        if direction is Direction.UP
        else (LineageEdgeRow.src_kind, LineageEdgeRow.src_id)
    )
    by_kind: dict[NodeKind, list[str]] = {}
    for key in frontier:
        by_kind.setdefault(key.kind, []).append(key.id)
    condition = or_(*(and_(kind_col == k.value, id_col.in_(ids)) for k, ids in by_kind.items()))
    rows = s.scalars(select(LineageEdgeRow).where(condition))
    return [
        Edge(
            NodeKey(NodeKind(r.src_kind), r.src_id),
            NodeKey(NodeKind(r.dst_kind), r.dst_id),
            EdgeType(r.edge_type),
        )
        for r in rows
    ]


def _produced_edges(s: Session, frontier: Collection[NodeKey], direction: Direction) -> list[Edge]:
    if direction is Direction.DOWN:
        runs = [k.id for k in frontier if k.kind is NodeKind.RUN]
        query = select(ModelVersionRow.id, ModelVersionRow.source_run_id).where(
            ModelVersionRow.source_run_id.in_(runs)
        )
    else:
        versions = _ids(frontier, NodeKind.MODEL_VERSION)
        query = select(ModelVersionRow.id, ModelVersionRow.source_run_id).where(
            ModelVersionRow.id.in_(versions), ModelVersionRow.source_run_id.is_not(None)
        )
    return [
        Edge(
            NodeKey(NodeKind.RUN, str(run_id)),
            NodeKey(NodeKind.MODEL_VERSION, str(version_id)),
            EdgeType.PRODUCED,
        )
        for version_id, run_id in s.execute(query)
    ]


def _describe_datasets(s: Session, ids: list[int]) -> dict[NodeKey, Node]:
    rows = s.execute(
        select(DatasetVersionRow, DatasetRow.name, ProjectRow.name)
        .join(DatasetRow, DatasetRow.id == DatasetVersionRow.dataset_id)
        .join(ProjectRow, ProjectRow.id == DatasetRow.project_id)
        .where(DatasetVersionRow.id.in_(ids))
    ).all()
    out: dict[NodeKey, Node] = {}
    for version, name, project in rows:
        key = NodeKey(NodeKind.DATASET_VERSION, str(version.id))
        attrs = {"dataset": name, "version": version.version, "files": version.file_count,
                 "size": version.total_size}  # fmt: skip
        out[key] = Node(key, f"{name}@v{version.version}", project, attrs)
    return out


def _describe_runs(s: Session, ids: list[str]) -> dict[NodeKey, Node]:
    rows = s.execute(
        select(RunRow, ExperimentRow.name, ProjectRow.name)
        .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
        .join(ProjectRow, ProjectRow.id == ExperimentRow.project_id)
        .where(RunRow.id.in_(ids))
    ).all()
    out: dict[NodeKey, Node] = {}
    for run, experiment, project in rows:
        key = NodeKey(NodeKind.RUN, run.id)
        attrs = {"name": run.name, "experiment": experiment, "status": run.status}
        out[key] = Node(key, f"{run.name} ({run.id[:8]})", project, attrs)
    return out


def _describe_models(s: Session, ids: list[int]) -> dict[NodeKey, Node]:
    rows = s.execute(
        select(ModelVersionRow, RegisteredModelRow.name, ProjectRow.name)
        .join(RegisteredModelRow, RegisteredModelRow.id == ModelVersionRow.model_id)
        .join(ProjectRow, ProjectRow.id == RegisteredModelRow.project_id)
        .where(ModelVersionRow.id.in_(ids))
    ).all()
    out: dict[NodeKey, Node] = {}
    for version, model, project in rows:
        key = NodeKey(NodeKind.MODEL_VERSION, str(version.id))
        attrs = {"model": model, "version": version.version, "flavor": version.flavor}
        out[key] = Node(key, f"{model}/{version.version}", project, attrs)
    return out
