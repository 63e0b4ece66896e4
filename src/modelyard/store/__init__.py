"""The metadata store: SQLAlchemy 2 over SQLite (default) or PostgreSQL, Alembic-migrated."""

from __future__ import annotations

from modelyard.core.clock import Clock
from modelyard.core.registry import SchemeRegistry
from modelyard.store._artifact_repo import ArtifactIndexRepository
from modelyard.store._auth_repo import AuthRepository
from modelyard.store._cost_repo import CostRepository
from modelyard.store._data_repo import DataRepository, dataset_version_namespace
from modelyard.store._deploy_repo import DeploymentChange, DeploymentRepository
from modelyard.store._lineage_repo import LineageRepository
from modelyard.store._monitor_repo import MonitorRepository
from modelyard.store._registry_repo import RegistryRepository
from modelyard.store._schedule_repo import ScheduleRepository
from modelyard.store._sql import SqlStore
from modelyard.store._tracking_repo import TrackingRepository
from modelyard.store.budget_repo import BudgetRepository
from modelyard.store.logged_model_repo import LoggedModelRepository

__all__ = [
    "ArtifactIndexRepository",
    "AuthRepository",
    "DataRepository",
    "DeploymentChange",
    "DeploymentRepository",
    "LineageRepository",
    "MetadataStore",
    "MonitorRepository",
    "RegistryRepository",
    "ScheduleRepository",
    "SqlStore",
    "TrackingRepository",
    "dataset_version_namespace",
    "open_store",
]


class MetadataStore:
    """The repositories of every capability over one SQL store."""

    def __init__(self, sql: SqlStore) -> None:
        self.sql = sql
        self.auth = AuthRepository(sql)
        self.artifacts = ArtifactIndexRepository(sql)
        self.tracking = TrackingRepository(sql)
        self.registry = RegistryRepository(sql)
        self.data = DataRepository(sql)
        self.lineage = LineageRepository(sql)
        self.logged_models = LoggedModelRepository(sql)
        self.deployments = DeploymentRepository(sql)
        self.monitoring = MonitorRepository(sql)
        self.cost = CostRepository(sql)
        self.budgets = BudgetRepository(sql)
        self.schedules = ScheduleRepository(sql)

    def migrate(self) -> None:
        self.sql.migrate()

    def close(self) -> None:
        self.sql.close()


def open_store(uri: str, clock: Clock | None = None) -> MetadataStore:
    """Open the metadata store named by ``uri`` (``sqlite:///…`` or ``postgresql…://``).

    Raises:
        InvalidInput: unsupported or malformed URI.
    """
    registry: SchemeRegistry[SqlStore] = SchemeRegistry("metadata store")
    registry.register("sqlite", lambda u: SqlStore.from_uri(u, clock))
    registry.register("postgresql", lambda u: SqlStore.from_uri(u, clock))
    return MetadataStore(registry.create(uri))
