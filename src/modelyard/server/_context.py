"""What the app holds for its routes: settings, stores and services, built once at start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry
from starlette.requests import HTTPConnection

from modelyard.artifacts import BlobStore
from modelyard.auth import AuthService
from modelyard.config import Settings
from modelyard.core.clock import Clock
from modelyard.cost.budget_service import BudgetService
from modelyard.cost.service import CostService
from modelyard.data.service import DataService
from modelyard.deploy.service import DeploymentService
from modelyard.lineage.service import LineageService
from modelyard.monitor.service import MonitorService
from modelyard.registry.service import RegistryService
from modelyard.store import MetadataStore
from modelyard.tracking.service import TrackingService


@dataclass
class AppContext:
    settings: Settings
    clock: Clock
    store: MetadataStore
    blobs: BlobStore
    auth: AuthService
    tracking: TrackingService
    registry: RegistryService
    metrics_registry: CollectorRegistry
    data: DataService
    lineage: LineageService
    deployments: DeploymentService
    monitoring: MonitorService
    cost: CostService
    budgets: BudgetService
    metrics_dir: Path | None = None


def app_context(conn: HTTPConnection) -> AppContext:
    ctx: AppContext = conn.app.state.modelyard
    return ctx
