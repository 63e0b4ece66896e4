"""Registry conformance: every metadata store backend must pass these too.

Use together with ``MetadataStoreConformance`` (same ``metadata_store`` fixture).
"""

from __future__ import annotations

import multiprocessing

import pytest

from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import AlreadyExists, Conflict, NotFound
from modelyard.core.models import ModelVersion
from modelyard.store import MetadataStore, open_store


def _register(store: MetadataStore, name: str = "churn", digest: str = "a" * 64) -> ModelVersion:
    return store.registry.create_version(
        "default",
        name,
        source_run_id="r" * 32,
        source_uri="runs:/rrr/model",
        flavor="sklearn",
        signature_json='{"inputs": []}',
        package_digest=digest,
        files=[
            ArtifactEntry("modelyard.yaml", digest, 10),
            ArtifactEntry("model.pkl", "b" * 64, 20),
        ],
        user="alice",
    )


def _register_in_process(uri: str) -> int:
    store = open_store(uri)
    try:
        return _register(store, "raced").version
    finally:
        store.close()


class RegistryStoreConformance:
    @pytest.fixture
    def registry_store(self, metadata_store: MetadataStore) -> MetadataStore:
        metadata_store.auth.create_project("default")
        return metadata_store

    def test_models_and_versions(self, registry_store: MetadataStore) -> None:
        registry = registry_store.registry
        registry.create_model("default", "fraud", "detects fraud", {"team": "risk"})
        with pytest.raises(AlreadyExists):
            registry.create_model("default", "fraud")
        first, second = _register(registry_store), _register(registry_store)
        assert (first.version, second.version) == (1, 2)
        got = registry.get_version("default", "churn", 2)
        assert [f.path for f in got.files] == ["model.pkl", "modelyard.yaml"]
        assert got.source_run_id == "r" * 32
        assert [m.name for m in registry.list_models("default")] == ["churn", "fraud"]
        assert registry.get_model("default", "churn").latest_version == 2
        assert registry.get_model("default", "fraud").tags == {"team": "risk"}
        with pytest.raises(NotFound, match="no version 3"):
            registry.get_version("default", "churn", 3)

    def test_aliases_move_atomically_with_history(self, registry_store: MetadataStore) -> None:
        registry = registry_store.registry
        for _ in range(3):
            _register(registry_store)
        registry.set_alias("default", "churn", "production", 1, "alice")
        change = registry.set_alias("default", "churn", "production", 3, "bob")
        assert (change.from_version, change.to_version) == (1, 3)
        assert registry.version_by_alias("default", "churn", "production").version == 3
        assert registry.get_model("default", "churn").aliases == {"production": 3}
        with pytest.raises(Conflict, match="'production'"):
            registry.delete_version("default", "churn", 3)
        registry.delete_version("default", "churn", 2)
        with pytest.raises(NotFound):
            registry.set_alias("default", "churn", "staging", 2, "bob")
        registry.delete_alias("default", "churn", "production", "carol")
        history = [
            (c.alias, c.from_version, c.to_version, c.user)
            for c in registry.alias_history("default", "churn")
        ]
        assert history == [
            ("production", None, 1, "alice"),
            ("production", 1, 3, "bob"),
            ("production", 3, None, "carol"),
        ]
        with pytest.raises(NotFound):
            registry.version_by_alias("default", "churn", "production")

    def test_eight_processes_register_without_gaps(self, registry_store: MetadataStore) -> None:
        uri = registry_store.sql.engine.url.render_as_string(hide_password=False)
        with multiprocessing.get_context("spawn").Pool(8) as pool:
            versions = pool.map(_register_in_process, [uri] * 8)
        assert sorted(versions) == list(range(1, 9))
        listed = registry_store.registry.list_versions("default", "raced")
        assert [v.version for v in listed] == list(range(1, 9))
