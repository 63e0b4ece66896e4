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
from modelyard.store.registry_search import parse_filter, parse_order_by


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

    # --- MLflow's registry surface: searches and changes, on every backend ---------------

    def test_search_models_filter_order_and_pages(self, registry_store: MetadataStore) -> None:
        registry = registry_store.registry
        for name in ("churn", "churn-eu", "Churn_v2", "fraud"):
            registry.create_model("default", name)
        registry.set_model_tag("default", "fraud", "team", "risk")
        registry.set_model_tag("default", "churn-eu", "team", "growth")

        def names(text: str | None, order: list[str] | None = None) -> list[str]:
            clauses = parse_filter("model", text)
            hits, more = registry.search_models(
                "default", clauses, parse_order_by("model", order), offset=0, limit=100
            )
            assert not more
            return [h.model.name for h in hits]

        # LIKE is case-sensitive and ILIKE is not, on SQLite as on PostgreSQL.
        assert names("name LIKE 'churn%'") == ["churn", "churn-eu"]
        # (sets where the order of mixed case depends on the database's collation)
        assert set(names("name ILIKE 'churn%'")) == {"churn", "churn-eu", "Churn_v2"}
        assert names("name LIKE 'Churn_v_'") == ["Churn_v2"]
        assert names("name LIKE 'churn%'", ["name DESC"]) == ["churn-eu", "churn"]
        assert names("name IN ('fraud', 'nope')") == ["fraud"]
        assert names("tags.team = 'risk'") == ["fraud"]
        assert names("tags.team LIKE 'gr%' AND name != 'churn'") == ["churn-eu"]
        assert names("name = 'fraud' AND tags.team = 'growth'") == []
        clauses = parse_filter("model", None)
        orders = parse_order_by("model", ["name ASC"])
        first, more = registry.search_models("default", clauses, orders, offset=0, limit=3)
        rest, more_after = registry.search_models("default", clauses, orders, offset=3, limit=3)
        assert more
        assert not more_after
        assert [h.model.name for h in first + rest] == names(None, ["name ASC"])
        assert len(first) == 3
        assert len(rest) == 1

    def test_search_versions_by_attributes_and_tags(self, registry_store: MetadataStore) -> None:
        registry = registry_store.registry
        for _ in range(3):
            _register(registry_store, "churn")
        _register(registry_store, "fraud")
        registry.set_version_tag("default", "churn", 2, "validated", "yes")

        def found(text: str | None, order: list[str] | None = None) -> list[tuple[str, int]]:
            versions, _more = registry.search_versions(
                "default",
                parse_filter("version", text),
                parse_order_by("version", order),
                offset=0,
                limit=100,
            )
            return [(v.model, v.version) for v in versions]

        assert found("name = 'churn' AND version_number >= 2", ["version_number ASC"]) == [
            ("churn", 2),
            ("churn", 3),
        ]
        assert found("tags.validated = 'yes'") == [("churn", 2)]
        assert found("run_id = '" + "r" * 32 + "' AND name = 'fraud'") == [("fraud", 1)]
        assert found("name IN ('fraud')") == [("fraud", 1)]
        assert found("version_number > 3") == []

    def test_rename_tags_stages_and_delete(self, registry_store: MetadataStore) -> None:
        registry = registry_store.registry
        _register(registry_store, "churn")
        _register(registry_store, "churn")
        registry.set_model_tag("default", "churn", "team", "growth")
        registry.set_version_tag("default", "churn", 1, "validated", "yes")
        registry.set_alias("default", "churn", "production", 1, "alice")
        registry.transition_stage("default", "churn", 1, "Production", archive_existing=False)
        moved = registry.transition_stage(
            "default", "churn", 2, "Production", archive_existing=True
        )
        assert moved.stage == "Production"
        assert registry.get_version("default", "churn", 1).stage == "Archived"

        renamed = registry.rename_model("default", "churn", "churn-v2")
        assert renamed.name == "churn-v2"
        assert renamed.tags == {"team": "growth"}
        assert registry.version_by_alias("default", "churn-v2", "production").version == 1
        assert registry.find_model("default", "churn") is None
        registry.create_model("default", "taken")
        with pytest.raises(AlreadyExists):
            registry.rename_model("default", "churn-v2", "taken")

        registry.delete_model_tag("default", "churn-v2", "team")
        registry.delete_version_tag("default", "churn-v2", 1, "validated")
        assert registry.get_model("default", "churn-v2").tags == {}
        assert registry.get_version("default", "churn-v2", 1).tags == {}

        registry.delete_model("default", "churn-v2")
        assert registry.find_model("default", "churn-v2") is None
        with pytest.raises(NotFound):
            registry.get_version("default", "churn-v2", 1)
        _register(registry_store, "churn-v2")  # the name is free again, numbering restarts
        assert registry.get_model("default", "churn-v2").latest_version == 1
