"""The artifact index: per-namespace manifests (logical path → digest, size) in SQL.

Blobs are written first and the index row is committed last, so a crash between the two
leaves at most an unreferenced blob, never an entry pointing at missing or partial bytes.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import NotFound
from modelyard.store._sql import SqlStore
from modelyard.store.schema import ArtifactEntryRow


class ArtifactIndexRepository:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def put(self, namespace: str, path: str, digest: str, size: int) -> ArtifactEntry:
        """Point ``path`` in ``namespace`` at a blob, replacing an earlier entry."""
        with self._store.transaction() as s:
            row = s.scalar(
                select(ArtifactEntryRow).where(
                    ArtifactEntryRow.namespace == namespace, ArtifactEntryRow.path == path
                )
            )
            if row is None:
                row = ArtifactEntryRow(namespace=namespace, path=path)
                s.add(row)
            row.digest, row.size, row.created_at = digest, size, self._store.clock.now()
            return ArtifactEntry(path, digest, size)

    def get(self, namespace: str, path: str) -> ArtifactEntry:
        with self._store.read() as s:
            row = s.scalar(
                select(ArtifactEntryRow).where(
                    ArtifactEntryRow.namespace == namespace, ArtifactEntryRow.path == path
                )
            )
            if row is None:
                raise NotFound(f"artifact {path!r} does not exist")
            return ArtifactEntry(row.path, row.digest, row.size)

    def list(self, namespace: str, prefix: str = "") -> list[ArtifactEntry]:
        with self._store.read() as s:
            query = (
                select(ArtifactEntryRow)
                .where(ArtifactEntryRow.namespace == namespace)
                .order_by(ArtifactEntryRow.path)
            )
            if prefix:
                query = query.where(ArtifactEntryRow.path.startswith(prefix, autoescape=True))
            return [ArtifactEntry(r.path, r.digest, r.size) for r in s.scalars(query)]

    def delete(self, namespace: str, path: str) -> None:
        with self._store.transaction() as s:
            result = s.execute(
                delete(ArtifactEntryRow).where(
                    ArtifactEntryRow.namespace == namespace, ArtifactEntryRow.path == path
                )
            )
            if getattr(result, "rowcount", 0) == 0:
                raise NotFound(f"artifact {path!r} does not exist")

    def referenced_digests(self) -> set[str]:
        with self._store.read() as s:
            return set(s.scalars(select(ArtifactEntryRow.digest).distinct()))
