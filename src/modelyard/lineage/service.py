"""Lineage queries: resolve what a user names into a node, walk, describe, filter by role."""

from __future__ import annotations

from modelyard.auth import Principal
from modelyard.core.datasets import parse_ref
from modelyard.core.entities import Role
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.core.lineage import Direction, LineageGraph, NodeKey, NodeKind
from modelyard.lineage.traversal import MAX_DEPTH, traverse
from modelyard.store import DataRepository, LineageRepository, TrackingRepository

KIND_ALIASES = {
    "dataset": NodeKind.DATASET_VERSION,
    "data": NodeKind.DATASET_VERSION,
    "dataset_version": NodeKind.DATASET_VERSION,
    "run": NodeKind.RUN,
    "model": NodeKind.MODEL_VERSION,
    "model_version": NodeKind.MODEL_VERSION,
    "deployment": NodeKind.DEPLOYMENT,
}


def parse_kind(kind: str) -> NodeKind:
    """``dataset``, ``run``, ``model``, ``deployment`` (or the node kind names).

    Raises:
        InvalidInput: any other kind.
    """
    found = KIND_ALIASES.get(kind)
    if found is None:
        raise InvalidInput(f"invalid lineage kind {kind!r}: expected one of {sorted(KIND_ALIASES)}")
    return found


class LineageService:
    """Answers "what made this, and what did it make" for any node a user may see."""

    def __init__(
        self, lineage: LineageRepository, data: DataRepository, tracking: TrackingRepository
    ) -> None:
        self._lineage = lineage
        self._data = data
        self._tracking = tracking

    def resolve(self, project: str, kind: str, ident: str) -> tuple[NodeKey, str]:
        """The node a user names, and the project it belongs to.

        ``dataset``: ``name@vN`` (default latest); ``run``: a run id; ``model``:
        ``name/<version>``; ``deployment``: its name (in ``project``).

        Raises:
            InvalidInput: a malformed kind or id. NotFound: no such node.
        """
        node_kind = parse_kind(kind)
        if node_kind is NodeKind.DATASET_VERSION:
            ref = parse_ref(ident)
            version_id, _ = self._data.version_id(project, ref.name, ref.version)
            return NodeKey(node_kind, str(version_id)), project
        if node_kind is NodeKind.RUN:
            return NodeKey(node_kind, ident), self._tracking.project_of_run(ident)
        if node_kind is NodeKind.MODEL_VERSION:
            name, _, version = ident.rpartition("/")
            if not name or not version.isdigit():
                raise InvalidInput(f"invalid model version {ident!r}: expected <name>/<version>")
            key = self._lineage.model_version_key(project, name, int(version))
            if key is None:
                raise NotFound(f"model {name!r} has no version {version} in project {project!r}")
            return key, project
        if not ident or "/" in ident:
            raise InvalidInput(f"invalid deployment name {ident!r}")
        return NodeKey(node_kind, f"{project}/{ident}"), project

    def graph(
        self,
        caller: Principal,
        project: str,
        kind: str,
        ident: str,
        direction: Direction = Direction.BOTH,
        depth: int = 10,
    ) -> LineageGraph:
        """The lineage around a node, limited to nodes in projects the caller can view.

        Raises:
            InvalidInput: bad kind, id or depth. NotFound: no such node.
            PermissionDenied: the caller cannot view the node's project.
        """
        if not 1 <= depth <= MAX_DEPTH:
            raise InvalidInput(f"depth must be between 1 and {MAX_DEPTH}, got {depth}")
        caller.require(project, Role.VIEWER)
        root, root_project = self.resolve(project, kind, ident)
        caller.require(root_project, Role.VIEWER)
        keys, edges = traverse(root, self._lineage.edges, direction, depth)
        described = self._lineage.describe(keys)
        visible = {
            k
            for k, node in described.items()
            if k == root or node.project is None or caller.role_in(node.project) is not None
        }
        return LineageGraph(
            root=root,
            nodes=tuple(described[k] for k in sorted(visible)),
            edges=tuple(sorted(e for e in edges if e.src in visible and e.dst in visible)),
        )
