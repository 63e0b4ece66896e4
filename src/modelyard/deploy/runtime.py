"""Deployments as ``modelyard server`` runs them: gateway, replica backend, controllers.

Local deployments get the gateway, the replica zygote and the local controller;
deployments on Kubernetes or Ray Serve get the orchestrated controller beside it
(:mod:`~modelyard.deploy._orchestrated`), whose backends load only when a deployment
needs one.
"""

from __future__ import annotations

import logging

from modelyard.artifacts import create_blob_store
from modelyard.config import Settings
from modelyard.core.errors import Unavailable
from modelyard.deploy._gateway_link import GatewayLink
from modelyard.deploy._launcher import SpawnLauncher, make_launcher
from modelyard.deploy._local_backend import LocalProcessBackend
from modelyard.deploy._orchestrated import OrchestratedController
from modelyard.deploy._orchestrated_calls import BackendFactory, default_backend_factories
from modelyard.deploy._reconcile import DeploymentController
from modelyard.deploy._replicas import ReplicaFactory
from modelyard.deploy.signals import GatewaySnapshot
from modelyard.store import open_store

logger = logging.getLogger("modelyard.deploy")

# Imported by the zygote at start, so the first sklearn replica forks warm.
ZYGOTE_PRELOAD = ("sklearn", "sklearn.linear_model", "sklearn.ensemble")


class LocalDeployments:
    """Starts (or adopts) the gateway, the replica zygote and the controllers; stops them.

    Args:
        settings: where the store, artifacts and ``MODELYARD_HOME`` are; the gateway port
            and the global replica limit.
        host: the address the gateway binds.
        backend_factories: orchestrator backend kind → factory; None for
            :func:`~modelyard.deploy._orchestrated_calls.default_backend_factories`
            (Ray sharing the local package cache).
        server_url: this server's URL as Kubernetes pods reach it (they fetch models
            from it); empty: the renderer's default.
    """

    def __init__(
        self,
        settings: Settings,
        host: str = "127.0.0.1",
        backend_factories: dict[str, BackendFactory] | None = None,
        server_url: str = "",
    ) -> None:
        self._settings = settings
        self._host = host
        self._factories = backend_factories
        self._server_url = server_url
        self._controller: DeploymentController | None = None
        self._orchestrated: OrchestratedController | None = None
        self._gateway: GatewayLink | None = None
        self._backend: LocalProcessBackend | None = None

    @property
    def controller(self) -> DeploymentController:
        if self._controller is None:
            raise Unavailable("deployments are not running")
        return self._controller

    def start(self) -> str:
        """Start everything; returns the gateway's URL.

        Raises:
            Unavailable: the gateway could not start (e.g. its port is taken).
        """
        settings = self._settings
        self._store = open_store(settings.store_uri)
        blobs = create_blob_store(settings.artifact_uri)
        gateway = GatewayLink(settings.home, settings.gateway_port, self._host)
        try:
            gateway.start()
        except Unavailable:
            self._store.close()
            raise
        self._gateway = gateway
        launchers = {
            "fork": make_launcher("fork", preload=ZYGOTE_PRELOAD),
            "spawn": SpawnLauncher(),
        }
        factory = ReplicaFactory(self._store, blobs, settings.home, launchers)
        self._backend = LocalProcessBackend(factory)
        self._controller = DeploymentController(
            self._store,
            self._backend,
            gateway,
            max_total_replicas=settings.replica_limit,
        )
        self._controller.start()
        factories = self._factories
        if factories is None:
            factories = default_backend_factories(factory, server_url=self._server_url)
        self._orchestrated = OrchestratedController(self._store, factories)
        self._orchestrated.start()
        return gateway.url

    def gateway_stats(self) -> GatewaySnapshot | None:
        """The gateway's counters now (None while it cannot be read)."""
        return self._gateway.stats() if self._gateway is not None else None

    def stop(self) -> None:
        """Stop replicas (gracefully), the controllers, the gateway and the zygote.

        Deployments on an orchestrator keep running: only the clients to it close.
        """
        if self._orchestrated is not None:
            self._orchestrated.stop()
        if self._controller is not None:
            self._controller.stop(stop_replicas=True)
        if self._gateway is not None:
            self._gateway.stop()
        if self._backend is not None:
            self._backend.close()
        self._store.close()
