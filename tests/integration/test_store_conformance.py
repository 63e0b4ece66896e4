"""The metadata store suite on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.core.clock import FakeClock
from modelyard.store import MetadataStore, open_store
from modelyard.testing.data_suite import DataStoreConformance
from modelyard.testing.postgres import PostgresServer
from modelyard.testing.registry_suite import RegistryStoreConformance
from modelyard.testing.store_suite import MetadataStoreConformance
from modelyard.testing.tracking_suite import TrackingStoreConformance

_db_numbers = itertools.count()


class TestSqliteStore(
    MetadataStoreConformance,
    TrackingStoreConformance,
    RegistryStoreConformance,
    DataStoreConformance,
):
    @pytest.fixture
    def metadata_store(self, tmp_path: Path, fake_clock: FakeClock) -> Iterator[MetadataStore]:
        store = open_store(f"sqlite:///{tmp_path / 'meta.db'}", fake_clock)
        store.migrate()
        yield store
        store.close()

    def test_sqlite_runs_in_wal_mode(self, metadata_store: MetadataStore) -> None:
        with metadata_store.sql.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        assert mode == "wal"
        assert timeout == 30_000


class TestPostgresStore(
    MetadataStoreConformance,
    TrackingStoreConformance,
    RegistryStoreConformance,
    DataStoreConformance,
):
    @pytest.fixture
    def metadata_store(
        self, pg_server: PostgresServer, fake_clock: FakeClock
    ) -> Iterator[MetadataStore]:
        name = f"conformance_{next(_db_numbers)}"
        store = open_store(pg_server.create_database(name), fake_clock)
        store.migrate()
        yield store
        store.close()
        pg_server.drop_database(name)

    def test_it_really_is_postgres(self, metadata_store: MetadataStore) -> None:
        assert metadata_store.sql.dialect == "postgresql"
