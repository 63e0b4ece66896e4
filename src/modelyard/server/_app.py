"""The ASGI application: built from Settings (or injected parts, in tests)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from modelyard import __version__
from modelyard.artifacts import BlobStore, create_blob_store
from modelyard.auth import AuthService
from modelyard.config import Settings
from modelyard.core.clock import Clock, SystemClock
from modelyard.core.entities import IssuedToken
from modelyard.cost import catalog_path, load_catalog
from modelyard.cost.budget_service import BudgetService
from modelyard.cost.service import CostService
from modelyard.data.service import DataService
from modelyard.deploy.service import DeploymentService
from modelyard.lineage.service import LineageService
from modelyard.monitor.metrics import MonitorCollector
from modelyard.monitor.service import MonitorService
from modelyard.registry.service import RegistryService
from modelyard.server._context import AppContext
from modelyard.server._errors import install_error_handlers
from modelyard.server._middleware import HttpMetrics, ObservabilityMiddleware
from modelyard.server.routes import (
    artifacts,
    audit,
    budgets,
    cost,
    data,
    deployments,
    lineage,
    mlflow_artifacts,
    mlflow_experiments,
    mlflow_logged_models,
    mlflow_registry,
    mlflow_runs,
    mlflow_unimplemented,
    monitoring,
    projects,
    registry,
    schedules,
    system,
    tokens,
    tracking,
    ui_data,
    ui_deployments,
    ui_lineage,
    ui_models,
    ui_ops,
    ui_runs,
    ui_session,
    users,
)
from modelyard.store import MetadataStore, open_store
from modelyard.tracking.service import TrackingService

logger = logging.getLogger("modelyard.server")

ROUTERS = (
    system.api,
    projects.api,
    users.api,
    tokens.api,
    audit.api,
    artifacts.api,
    tracking.api,
    registry.api,
    mlflow_experiments.api,
    mlflow_runs.api,
    mlflow_logged_models.api,
    mlflow_registry.api,
    mlflow_artifacts.api,
    mlflow_runs.proto_path_api,
    mlflow_unimplemented.api,
    data.api,
    lineage.api,
    deployments.api,
    monitoring.api,
    cost.api,
    budgets.api,
    schedules.api,
    ui_session.root,
    ui_session.api,
    ui_runs.api,
    ui_data.api,
    ui_lineage.api,
    ui_models.api,
    ui_deployments.api,
    ui_ops.api,
)
STALE_PARTIAL_UPLOAD_S = 3600.0


def build_context(
    settings: Settings,
    *,
    store: MetadataStore | None = None,
    blobs: BlobStore | None = None,
    clock: Clock | None = None,
    metrics_dir: Path | None = None,
) -> AppContext:
    """Open (and migrate) the stores and build the services the routes use.

    ``metrics_dir``: the prometheus_client multiprocess folder shared by the server's
    workers (None for a single process).
    """
    clock = clock or SystemClock()
    # A bad price file stops the start here, naming its file and line, before any I/O.
    catalog = load_catalog(catalog_path(settings.home, settings.prices))
    store = store or open_store(settings.store_uri, clock)
    store.migrate()
    blobs = blobs or create_blob_store(settings.artifact_uri, fsync=settings.blob_fsync)
    registry = RegistryService(store.registry, store.tracking, store.artifacts, blobs)
    metrics_registry = CollectorRegistry()
    metrics_registry.register(MonitorCollector(store))
    cost = CostService(store, catalog, clock)
    return AppContext(
        settings=settings,
        clock=clock,
        store=store,
        blobs=blobs,
        auth=AuthService(store.auth, clock),
        tracking=TrackingService(store.tracking, clock),
        registry=registry,
        metrics_registry=metrics_registry,
        metrics_dir=metrics_dir,
        data=DataService(store.data, store.lineage, store.tracking, blobs),
        lineage=LineageService(store.lineage, store.data, store.tracking),
        deployments=DeploymentService(
            store,
            registry,
            gateway_url=settings.gateway_url,
            max_total_replicas=settings.replica_limit,
        ),
        monitoring=MonitorService(store, blobs, settings.home, clock),
        cost=cost,
        budgets=BudgetService(
            store,
            clock,
            spend=cost.project_spend,
            currency=cost.currency,
            interval_s=settings.budget_interval_s,
        ),
    )


def bootstrap_platform(ctx: AppContext, tracking_uri: str) -> IssuedToken | None:
    """First-start set-up, idempotent: default project, admin token, Default experiment."""
    issued = ctx.auth.bootstrap(ctx.settings.credentials_path, tracking_uri)
    ctx.tracking.ensure_default_experiment()
    return issued


def _audit_writer(ctx: AppContext) -> Any:
    def write(state: dict[str, Any], method: str, status: int) -> None:
        principal = state.get("principal")
        outcome = "ok" if status < 400 else ("denied" if status in (401, 403) else "error")
        ctx.store.auth.append_audit(
            actor=principal.user if principal else "anonymous",
            token_id=principal.token_id if principal else None,
            action=str(state["audit_action"]),
            project=state.get("audit_project"),
            target=str(state.get("audit_target", "")),
            outcome=outcome,
            status_code=status,
            detail=method,
        )

    return write


def create_app(ctx: AppContext) -> FastAPI:
    """The modelyard API server over an already-built context."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        removed = ctx.blobs.remove_stale_partials(STALE_PARTIAL_UPLOAD_S)
        if removed:
            logger.info("removed %d partial uploads left by an earlier process", removed)
        yield

    app = FastAPI(
        title="modelyard",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.modelyard = ctx
    install_error_handlers(app)
    for api in ROUTERS:
        api.install(app)
    app.add_middleware(
        ObservabilityMiddleware,
        metrics=HttpMetrics(ctx.metrics_registry),
        audit=_audit_writer(ctx),
    )
    return app
