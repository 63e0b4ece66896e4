"""Dataset and lineage conformance: every metadata store backend must pass these too.

Use together with ``MetadataStoreConformance`` (same ``metadata_store`` fixture).
"""

from __future__ import annotations

import pytest

from modelyard.core.clock import FakeClock
from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import NotFound
from modelyard.lineage import Direction, Edge, EdgeType, NodeKey, NodeKind
from modelyard.store import MetadataStore


def _files(*chars: str) -> list[ArtifactEntry]:
    return [ArtifactEntry(f"part-{c}.bin", c * 64, 10) for c in chars]


class DataStoreConformance:
    @pytest.fixture
    def data_store(self, metadata_store: MetadataStore) -> MetadataStore:
        metadata_store.auth.create_project("default")
        return metadata_store

    def _commit(
        self, store: MetadataStore, name: str, *chars: str, run_id: str | None = None
    ) -> tuple[int, bool]:
        version, created = store.data.commit_version(
            "default", name, _files(*chars), manifest_digest="".join(chars).ljust(64, "0"),
            user="alice", message=f"{name} {chars}", profile={"format_version": 1, "tables": {}},
            source_run_id=run_id,
        )  # fmt: skip
        return version.version, created

    def test_versions_number_up_and_identical_content_is_not_a_version(
        self, data_store: MetadataStore
    ) -> None:
        assert self._commit(data_store, "credit", "a", "b") == (1, True)
        assert self._commit(data_store, "credit", "a", "b") == (1, False)
        assert self._commit(data_store, "credit", "a", "c") == (2, True)
        assert self._commit(data_store, "credit", "a", "b") == (3, True)  # only vs. latest
        got = data_store.data.get_version("default", "credit", 2)
        assert [f.path for f in got.files] == ["part-a.bin", "part-c.bin"]
        assert got.total_size == 20
        assert got.file_count == 2
        assert got.user == "alice"
        assert got.profile == {"format_version": 1, "tables": {}}
        assert data_store.data.get_version("default", "credit", None).version == 3
        listed = data_store.data.list_versions("default", "credit")
        assert [v.version for v in listed] == [3, 2, 1]
        assert [(d.name, d.latest_version) for d in data_store.data.list_datasets("default")] == [
            ("credit", 3)
        ]

    def test_summaries_and_a_window_of_files_for_the_web_ui(
        self, data_store: MetadataStore, fake_clock: FakeClock
    ) -> None:
        self._commit(data_store, "alpha", "a", "b")
        self._commit(data_store, "alpha", "a", "c", "d")
        self._commit(data_store, "zeta", "a")
        fake_clock.advance(5)
        data_store.data.commit_version(
            "default", "alpha", _files("e"), manifest_digest="e" * 64, user="bob",
            profile={"format_version": 1, "tables": {"x.csv": {"num_rows": 7}, "y": {}}},
        )  # fmt: skip
        summaries = data_store.data.dataset_summaries("default")
        assert [(s.dataset.name, s.version_count) for s in summaries] == [("alpha", 3), ("zeta", 1)]
        latest = summaries[0].latest
        assert latest is not None
        assert (latest.version.version, latest.version.user, latest.rows) == (3, "bob", 7)
        assert summaries[1].latest is not None
        assert summaries[1].latest.rows is None
        recent = data_store.data.dataset_summaries("default", limit=1, recent=True)
        assert [s.dataset.name for s in recent] == ["alpha"]
        paged = data_store.data.dataset_summaries("default", offset=1, limit=5)
        assert [s.dataset.name for s in paged] == ["zeta"]
        versions = data_store.data.version_summaries("default", "alpha", offset=1, limit=1)
        assert [(v.version.version, v.version.file_count) for v in versions] == [(2, 3)]
        window = data_store.data.get_version("default", "alpha", 2, file_offset=1, file_limit=1)
        assert ([f.path for f in window.files], window.file_count) == (["part-c.bin"], 3)
        none = data_store.data.get_version("default", "alpha", 2, file_limit=0)
        assert none.files == ()
        with pytest.raises(NotFound, match="dataset 'nope'"):
            data_store.data.version_summaries("default", "nope")

    def test_unknown_names_and_versions_are_not_found(self, data_store: MetadataStore) -> None:
        with pytest.raises(NotFound, match="dataset 'nope'"):
            data_store.data.get_version("default", "nope", None)
        self._commit(data_store, "d", "a")
        with pytest.raises(NotFound, match="no version v9"):
            data_store.data.get_version("default", "d", 9)
        with pytest.raises(NotFound, match="project 'elsewhere'"):
            data_store.data.list_datasets("elsewhere")

    def test_lineage_edges_stored_and_derived(self, data_store: MetadataStore) -> None:
        experiment = data_store.tracking.create_experiment("default", "exp")
        run = data_store.tracking.create_run(
            run_id="e" * 32, experiment_id=experiment.id, name="train", user="alice",
            start_time_ms=0, tags={}, parent_run_id=None,
        )  # fmt: skip
        self._commit(data_store, "raw", "a")
        self._commit(data_store, "features", "b", run_id=run.id)
        raw_id, _ = data_store.data.version_id("default", "raw", 1)
        raw = NodeKey(NodeKind.DATASET_VERSION, str(raw_id))
        run_key = NodeKey(NodeKind.RUN, run.id)
        edge = Edge(raw, run_key, EdgeType.INPUT)
        assert data_store.lineage.add_edge(edge) is True
        assert data_store.lineage.add_edge(edge) is False
        data_store.registry.create_version(
            "default", "churn", source_run_id=run.id, source_uri="", flavor="sklearn",
            signature_json="", package_digest="c" * 64, files=[], user="alice",
        )  # fmt: skip
        model = data_store.lineage.model_version_key("default", "churn", 1)
        assert model is not None
        down = data_store.lineage.edges([run_key], Direction.DOWN)
        assert {(e.type, e.dst.kind) for e in down} == {
            (EdgeType.OUTPUT, NodeKind.DATASET_VERSION),
            (EdgeType.PRODUCED, NodeKind.MODEL_VERSION),
        }
        assert data_store.lineage.edges([model], Direction.UP) == [
            Edge(run_key, model, EdgeType.PRODUCED)
        ]
        assert data_store.lineage.edges([run_key], Direction.UP) == [edge]
        gone = NodeKey(NodeKind.RUN, "f" * 32)
        described = data_store.lineage.describe([raw, run_key, model, gone])
        assert described[raw].label == "raw@v1"
        assert described[raw].project == "default"
        assert described[model].label == "churn/1"
        assert described[run_key].attrs["experiment"] == "exp"
        assert described[gone].attrs == {"missing": True}
