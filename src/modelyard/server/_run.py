"""Running the server: loopback by default, one process or several on one port."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from modelyard.auth import IssuedToken
from modelyard.config import Settings
from modelyard.core.errors import InvalidInput
from modelyard.net import is_loopback, listen_socket
from modelyard.server._app import bootstrap_platform, build_context, create_app

if TYPE_CHECKING:
    from modelyard.cost.budget_loop import BudgetLoop
    from modelyard.deploy.runtime import LocalDeployments
    from modelyard.monitor.loop import MonitorLoop
    from modelyard.pipelines.scheduler import Scheduler

logger = logging.getLogger("modelyard.server")


@dataclass(frozen=True)
class ServerOptions:
    """How the API server runs (the model server's are :class:`modelyard.serving.ServeOptions`).

    Attributes:
        host: The address to bind; loopback unless ``allow_remote``.
        port: The port to bind.
        workers: Server processes sharing the port.
        allow_remote: Bind a non-loopback address on purpose.
        log_level: uvicorn's log level.
        deployments: Run the deployment gateway and controller too.
    """

    host: str = "127.0.0.1"
    port: int = 5005
    workers: int = 1
    allow_remote: bool = False
    log_level: str = "warning"
    deployments: bool = True


def check_bind(options: ServerOptions, settings: Settings) -> None:
    """Refuse unsafe or impossible bind settings before anything starts.

    Raises:
        InvalidInput: a non-loopback address without ``allow_remote``, a remote bind
            with auth disabled, or an out-of-range port / worker count.
    """
    if not 0 <= options.port <= 65535:
        raise InvalidInput(f"port must be between 0 and 65535, got {options.port}")
    if not 1 <= options.workers <= 64:
        raise InvalidInput(f"workers must be between 1 and 64, got {options.workers}")
    if is_loopback(options.host):
        return
    if not options.allow_remote:
        raise InvalidInput(
            f"refusing to bind {options.host}: it is reachable from other machines. "
            "Pass --allow-remote to do so on purpose."
        )
    if not settings.auth_enabled:
        raise InvalidInput(
            f"refusing to bind {options.host} with authentication disabled: "
            "unset MODELYARD_AUTH_ENABLED=false first"
        )


def client_uri(options: ServerOptions) -> str:
    host = options.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming it, not binding it
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{options.port}"


def prepare(settings: Settings, options: ServerOptions) -> IssuedToken | None:
    """Migrate the store and bootstrap the admin once, before any worker starts."""
    check_bind(options, settings)
    ctx = build_context(settings)
    try:
        return bootstrap_platform(ctx, client_uri(options))
    finally:
        ctx.store.close()


def _serve_in_process(
    settings: Settings,
    options: ServerOptions,
    sock: socket.socket | None,
    metrics_dir: Path | None = None,
) -> None:
    app = create_app(build_context(settings, metrics_dir=metrics_dir))
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_level=options.log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock] if sock is not None else None)


def _worker(settings: Settings, options: ServerOptions, metrics_dir: Path) -> None:
    # Each worker owns a SO_REUSEPORT socket: the kernel spreads connections, and
    # accepted sockets keep asyncio's TCP_NODELAY (uvicorn's own --workers loses it).
    sock = listen_socket(options.host, options.port, reuse_port=True)
    _serve_in_process(settings, options, sock, metrics_dir)


def serve(
    settings: Settings,
    options: ServerOptions,
    on_ready: Callable[[IssuedToken | None], None] | None = None,
) -> None:
    """Run until interrupted. Several workers share the port through SO_REUSEPORT.

    The pipeline scheduler runs in this process with or without deployments."""
    issued = prepare(settings, options)
    deployments = _start_deployments(settings) if options.deployments else None
    try:
        scheduler = _start_scheduler(settings, options)
    except Exception:
        if deployments is not None:
            deployments.stop()
        raise
    if options.workers == 1:
        # uvicorn re-raises the signal that stopped it after its graceful shutdown; with a
        # handler installed that returns instead of killing the process, so the replicas,
        # the gateway and the scheduled pipeline runs below are stopped too.
        signal.signal(signal.SIGTERM, _stopped)
    try:
        if on_ready is not None:
            on_ready(issued)
        _serve_workers(settings, options)
    finally:
        scheduler.stop()
        if deployments is not None:
            deployments.stop()


def _stopped(signum: int, _frame: FrameType | None) -> None:
    logger.info("stopping on signal %d", signum)


def _start_deployments(settings: Settings) -> _Background:
    """The gateway, replica zygote and controller, and the monitor and budget loops beside
    them: one set per server, in this process."""
    from modelyard.deploy.runtime import LocalDeployments

    deployments = LocalDeployments(settings)
    deployments.start()
    try:
        monitor = _start_monitor(settings, deployments)
    except Exception:
        deployments.stop()
        raise
    try:
        budgets = _start_budgets(settings)
    except Exception:
        monitor.stop()
        deployments.stop()
        raise
    return _Background(deployments, monitor, budgets)


def _start_monitor(settings: Settings, deployments: LocalDeployments) -> MonitorLoop:
    from modelyard.artifacts import create_blob_store
    from modelyard.core.clock import SystemClock
    from modelyard.monitor.loop import MonitorLoop
    from modelyard.monitor.service import MonitorService
    from modelyard.store import open_store

    store = open_store(settings.store_uri)
    blobs = create_blob_store(settings.artifact_uri, fsync=settings.blob_fsync)
    clock = SystemClock()
    service = MonitorService(store, blobs, settings.home, clock)
    loop = MonitorLoop(
        store,
        service,
        settings.home,
        deployments.gateway_stats,
        clock=clock,
        interval_s=settings.monitor_interval_s,
    )
    loop.start()
    return loop


def _start_budgets(settings: Settings) -> BudgetLoop:
    """The budget loop, on its own store connection and ledger (the price catalog is
    read here as the API's is: a bad price file stops the start, naming its line)."""
    from modelyard.core.clock import SystemClock
    from modelyard.cost import catalog_path, load_catalog
    from modelyard.cost.budget_loop import BudgetLoop
    from modelyard.cost.service import CostService
    from modelyard.store import open_store

    clock = SystemClock()
    store = open_store(settings.store_uri, clock)
    catalog = load_catalog(catalog_path(settings.home, settings.prices))
    cost = CostService(store, catalog, clock)
    loop = BudgetLoop(store, cost.project_spend, clock=clock, interval_s=settings.budget_interval_s)
    loop.start()
    return loop


def _start_scheduler(settings: Settings, options: ServerOptions) -> Scheduler:
    """The pipeline scheduler, on its own store connection; its fires talk to this server."""
    from modelyard.auth import AuthService
    from modelyard.core.clock import SystemClock
    from modelyard.pipelines.scheduler import Scheduler
    from modelyard.store import open_store

    clock = SystemClock()
    store = open_store(settings.store_uri, clock)
    scheduler = Scheduler(
        store,
        pipelines_dir=settings.pipelines_dir,
        work_dir=settings.home / "schedules",
        tracking_uri=client_uri(options),
        auth=AuthService(store.auth, clock) if settings.auth_enabled else None,
        clock=clock,
        interval_s=settings.schedule_interval_s,
    )
    scheduler.start()
    return scheduler


@dataclass
class _Background:
    deployments: LocalDeployments
    monitor: MonitorLoop
    budgets: BudgetLoop

    def stop(self) -> None:
        self.budgets.stop()
        self.monitor.stop()
        self.deployments.stop()


def _serve_workers(settings: Settings, options: ServerOptions) -> None:
    if options.workers == 1:
        _serve_in_process(settings, options, None)
        return
    # Fail here, with one clear error, if the port is taken.
    listen_socket(options.host, options.port, reuse_port=False).close()
    # One /metrics for all workers: prometheus_client's multiprocess mode. Each worker
    # (a fresh interpreter) finds PROMETHEUS_MULTIPROC_DIR before it imports the client,
    # keeps its counters in files there, and any worker's /metrics sums them all.
    metrics_dir = settings.home / "run" / f"metrics-{os.getpid()}"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    spawn = multiprocessing.get_context("spawn")
    workers = [
        spawn.Process(target=_worker, args=(settings, options, metrics_dir), daemon=False)
        for _ in range(options.workers)
    ]
    for proc in workers:
        proc.start()

    def stop(signum: int, _frame: FrameType | None) -> None:
        for proc in workers:
            if proc.is_alive() and proc.pid is not None:
                proc.terminate()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for proc in workers:
            proc.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(metrics_dir, ignore_errors=True)
