"""The reference a deployment's traffic is compared with: the dataset version that
trained the served model, found through lineage, read from the artifact store.

Lineage: model version ← ``produced`` ← run ← ``input`` ← dataset versions. When the run
read several dataset versions, the one holding every feature the model takes is chosen
(the oldest such, by id, on a tie: training data is usually read first). A user can
name another version in the deployment's monitoring settings (``reference``).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.artifacts import BlobStore
from modelyard.core.datasets import parse_ref
from modelyard.core.errors import InvalidInput, NotFound
from modelyard.core.lineage import Direction, NodeKey, NodeKind
from modelyard.data.profile import table_format
from modelyard.lineage.traversal import traverse
from modelyard.store import MetadataStore

_CACHE_SIZE = 8


@dataclass(frozen=True)
class Reference:
    """A reference table, its dataset version (``name@vN``), and the columns kept."""

    ref: str
    version_id: int
    table: Any
    columns: tuple[str, ...]


def training_datasets(store: MetadataStore, project: str, model: str, version: int) -> list[int]:
    """Ids of the dataset versions the run that produced the model version read."""
    key = store.lineage.model_version_key(project, model, version)
    if key is None:
        raise NotFound(f"model {model!r} has no version {version} in project {project!r}")
    nodes, _ = traverse(key, store.lineage.edges, Direction.UP, 2)
    return sorted(int(n.id) for n in nodes if n.kind is NodeKind.DATASET_VERSION)


class ReferenceLoader:
    """Finds and reads reference tables, keeping the last few in memory.

    Args:
        store: The metadata store (lineage, datasets).
        blobs: Where dataset files are (read and verified by digest).
    """

    def __init__(self, store: MetadataStore, blobs: BlobStore) -> None:
        self._store = store
        self._blobs = blobs
        self._cache: OrderedDict[tuple[int, tuple[str, ...]], Reference] = OrderedDict()
        self._prepared: OrderedDict[tuple[int, tuple[str, ...]], Any] = OrderedDict()
        self._lock = threading.Lock()

    def prepared(self, reference: Reference, columns: Sequence[str]) -> Any:
        """The reference's columns sorted and counted once (``prepare_reference``), kept
        for the next windows: a drift check then only sorts the current data."""
        from modelyard.monitor._drift import prepare_reference

        key = (reference.version_id, tuple(columns))
        with self._lock:
            found = self._prepared.get(key)
            if found is not None:
                self._prepared.move_to_end(key)
                return found
        prepared = prepare_reference(reference.table, list(columns))
        with self._lock:
            self._prepared[key] = prepared
            while len(self._prepared) > _CACHE_SIZE:
                self._prepared.popitem(last=False)
        return prepared

    def for_model(
        self,
        project: str,
        model: str,
        version: int,
        features: Sequence[str],
        override: str = "",
    ) -> Reference:
        """The reference of a served model version.

        Raises:
            NotFound: no dataset version is linked to the model (and none was named).
            InvalidInput: the reference lacks a feature the model takes, or has no table.
        """
        if override:
            parsed = parse_ref(override)
            version_id, _ = self._store.data.version_id(project, parsed.name, parsed.version)
            return self.load(project, version_id, features)
        candidates = training_datasets(self._store, project, model, version)
        if not candidates:
            raise NotFound(
                f"no dataset version is linked to model {model!r} version {version} through "
                "lineage (record it with my.use_dataset in the training run), and the "
                "deployment names no reference (modelyard monitor config --reference NAME@vN)"
            )
        problems = []
        for version_id in candidates:
            try:
                return self.load(project, version_id, features)
            except InvalidInput as exc:
                problems.append(exc.message)
        raise InvalidInput("; ".join(problems))

    def load(self, project: str, version_id: int, features: Sequence[str]) -> Reference:
        """Read a dataset version's table, keeping ``features`` (all columns if empty).

        Raises:
            InvalidInput: no CSV/Parquet file, or a feature is missing from it.
        """
        key = (version_id, tuple(features))
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        reference = self._read(project, version_id, features)
        with self._lock:
            self._cache[key] = reference
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return reference

    def _read(self, project: str, version_id: int, features: Sequence[str]) -> Reference:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        described = self._store.lineage.describe(
            [NodeKey(NodeKind.DATASET_VERSION, str(version_id))]
        )
        node = next(iter(described.values()))
        name, number = str(node.attrs.get("dataset", "")), int(node.attrs.get("version", 0))
        if not name:
            raise NotFound(f"dataset version {version_id} no longer exists")
        version = self._store.data.get_version(project, name, number)
        tables = []
        for entry in version.files:
            kind = table_format(entry.path)
            if kind is None:
                continue
            data = self._blobs.read_bytes(entry.digest)
            if kind == "parquet":
                tables.append(pq.read_table(io.BytesIO(data)))
            else:
                tables.append(pacsv.read_csv(io.BytesIO(data)))
        ref = f"{name}@v{number}"
        if not tables:
            raise InvalidInput(f"{ref} holds no CSV or Parquet file to compare with")
        usable = [t for t in tables if all(f in t.schema.names for f in features)]
        if not usable:
            have = sorted(set().union(*(t.schema.names for t in tables)))
            missing = sorted(set(features) - set(have))
            raise InvalidInput(f"{ref} has no column(s) {missing} the model takes (it has {have})")
        table = pa.concat_tables(
            [t.select(list(features)) if features else t for t in usable],
            promote_options="permissive",
        )
        return Reference(ref, version_id, table, tuple(table.schema.names))
