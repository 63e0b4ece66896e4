"""The Ray Serve backend: a deployment runs as one Ray Serve application.

:class:`RayServeBackend` implements :class:`~modelyard.deploy._backend.OrchestratorBackend`.
For a deployment ``<dep>`` of project ``<project>`` it runs the application
``<project>-<dep>`` at route prefix ``/<dep>`` on the cluster at
``deployment.backend.address``: an ``ingress`` deployment splitting traffic by weight
and one ``rev-<n>`` deployment per revision running modelyard's own runtime (see
:mod:`modelyard.deploy._ray_app`; the decisions are in :mod:`modelyard.deploy._ray_plan`).

Model files: the backend fetches a revision's package from the blob store into the
server's package cache (every file checked against its registered digest, exactly as
for local replicas), packs it, and puts it once into Ray's GCS key-value store — what
Ray itself uses to ship ``working_dir`` packages — under a key derived from its
digests. Replicas on any node read it from there and verify the digests again while
loading. Unlike an object in the object store, the entry does not die with the driver
that put it, so Serve can restart replicas on other nodes after this server has gone.

Connection: lazily on first use, ``ray.init(address=..., namespace="modelyard")``
after a 3 s TCP probe of an explicit address (``ray.init`` on an address nobody
answers retries for a minute); one cluster per server process. Serve is started with
its HTTP proxy on the head node, bound to 127.0.0.1 unless the backend is told
otherwise. ``close`` disconnects only a connection this backend opened.

Serve's Python API gives every ``serve.run`` a fresh random code version, which would
restart every replica on every apply (each weight change, each scaling decision). The
backend pins each deployment's version to a hash of what its replicas are built from
(:func:`~modelyard.deploy._ray_plan.code_version`), so Serve applies replica counts,
autoscaling and routes in place and restarts only what really changed. Ray removed
``version`` from the public ``options``; the backend sets it through the internal flag
and, if a future Ray refuses that, deploys unpinned (replicas then restart on apply).

Load: ``observe`` also asks every running ingress replica for its request counters
(through Serve's per-replica stats hook, on the replica actor by name, at most
:data:`LOAD_TIMEOUT_S`) and sums them per revision into ``Observed.load``
(:func:`~modelyard.deploy._ray_plan.accumulate`, stamped with this backend's monotonic
clock): the signal modelyard's own autoscaler scales on. A replica that does not answer
in time is left out of this read; none answering means no signal this time (None).
"""

from __future__ import annotations

import logging
import socket
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from modelyard.core.deployments import Deployment, Revision
from modelyard.core.errors import Conflict, InvalidInput, ModelyardError
from modelyard.deploy._backend import Observed, RevisionTarget
from modelyard.deploy._ray_plan import (
    CONSTRUCTOR_RETRIES,
    INGRESS,
    INGRESS_ACTOR_OPTIONS,
    INGRESS_MAX_ONGOING,
    INGRESS_REPLICAS,
    LOAD_METHOD,
    ROUTES_KEY,
    SERVE_ACTOR_NAMESPACE,
    LoadBook,
    accumulate,
    actor_options,
    app_name,
    code_version,
    ingress_actors,
    load_of,
    max_ongoing,
    observe,
    package_key,
    parse_report,
    revision_deployment,
    revision_spec,
    route_prefix,
    routed_revisions,
    routes,
    scaling_options,
)
from modelyard.deploy._replicas import Package
from modelyard.deploy.signals import RevisionCounters

logger = logging.getLogger("modelyard.deploy")

KV_NAMESPACE = "modelyard"
RAY_NAMESPACE = "modelyard"
PROBE_TIMEOUT_S = 3.0
# How long ``observe`` waits for the ingress replicas' load reports (a pass is 2 s).
LOAD_TIMEOUT_S = 1.0
# Ray's GCS refuses values near its gRPC message limit (512 MiB); stay well below.
MAX_PACKAGE_BYTES = 400 * 1024 * 1024


class PackageSource(Protocol):
    """Fetches (and verifies) a revision's model package onto this machine."""

    def package(self, project: str, revision: Revision) -> Package:
        """The package on local disk.

        Raises:
            NotFound: the model version is gone.
            IntegrityError: a file does not match its recorded digest.
        """
        ...


class RayServeBackend:
    """Runs deployments as Ray Serve applications (see the module docstring).

    Args:
        packages: Where revision packages come from (the local backend's
            :class:`~modelyard.deploy._replicas.ReplicaFactory` does: one cache).
        http_host: The address Serve's HTTP proxy binds when this backend starts Serve
            (loopback by default; a proxy already running keeps its own).
        http_port: Its port.
        probe_timeout_s: How long an explicit address may take to accept a TCP connection.
        clock: The monotonic clock that stamps the load counters ``observe`` reports.
    """

    def __init__(
        self,
        packages: PackageSource,
        *,
        http_host: str = "127.0.0.1",
        http_port: int = 8000,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < http_port < 65536:
            raise InvalidInput(f"http_port must be in 1..65535, got {http_port}")
        self._packages = packages
        self._http_host = http_host
        self._http_port = http_port
        self._probe_timeout_s = probe_timeout_s
        self._clock = clock
        self._address: str | None = None
        self._owns_connection = False
        self._applied: dict[str, str] = {}  # application -> fingerprint of what was applied
        self._load: dict[str, LoadBook] = {}  # application -> its ingress counters so far

    @classmethod
    def for_store(cls, store: Any, blobs: Any, home: Path, **options: Any) -> RayServeBackend:
        """A backend fetching packages from ``store``/``blobs`` into ``home``'s cache."""
        from modelyard.deploy._replicas import ReplicaFactory

        return cls(ReplicaFactory(store, blobs, home, {}), **options)

    # --- the contract ------------------------------------------------------------------

    def apply(self, deployment: Deployment, targets: Sequence[RevisionTarget]) -> None:
        """Deploy (or update in place) the deployment's application; returns at once.

        Raises:
            InvalidInput: not a ray deployment, or a package too large to ship.
            NotFound, IntegrityError: a revision's model cannot be fetched or verified.
            Conflict: another application already serves the route prefix ``/<dep>``.
            ModelyardError: Serve refused the application.
            OSError: the cluster cannot be reached.
        """
        self._connect(deployment)
        serve = import_serve()
        from ray.serve.api import RunTarget

        from modelyard.deploy._ray_app import Ingress, RevisionServer

        app = app_name(deployment)
        prefix = route_prefix(deployment)
        details = self._details()
        self._check_prefix(details, app, prefix)
        planned: list[tuple[dict[str, Any], dict[str, Any], str, Path]] = []
        for target in sorted(targets, key=lambda t: t.revision.number):
            revision = target.revision
            package = self._packages.package(deployment.project, revision)
            key = package_key(app, package.expected_files)
            spec = revision_spec(
                target,
                package_key=key,
                kv_namespace=KV_NAMESPACE,
                model_name=package.model_name,
                model_version=package.model_version,
                expected_files=package.expected_files,
            )
            resources = actor_options(revision.settings)
            options: dict[str, Any] = {
                "name": revision_deployment(revision.number),
                "ray_actor_options": resources,
                "max_ongoing_requests": max_ongoing(deployment.config),
                "max_constructor_retry_count": CONSTRUCTOR_RETRIES,
                **scaling_options(deployment, target),
            }
            planned.append((options, spec, code_version("revision", spec, resources), package.path))
        table = routes(targets)
        fingerprint = code_version(prefix, [(o, s) for o, s, _, _ in planned], table)
        if self._applied.get(app) == fingerprint and app in (details.get("applications") or {}):
            return  # nothing changed since this backend applied it: spare Serve the redeploy
        for _, spec, _, folder in planned:
            self._ship(spec["package_key"], folder)
        bound = [
            _pinned(serve.deployment(RevisionServer, **options), version).bind(spec)
            for options, spec, version, _ in planned
        ]
        ingress_actor = dict(INGRESS_ACTOR_OPTIONS)
        ingress = serve.deployment(
            serve.ingress()(Ingress),
            name=INGRESS,
            num_replicas=INGRESS_REPLICAS,
            ray_actor_options=ingress_actor,
            max_ongoing_requests=INGRESS_MAX_ONGOING,
            user_config={ROUTES_KEY: table},
        )
        ingress = _pinned(ingress, code_version("ingress", app, ingress_actor))
        application = ingress.bind(app, bound)
        self._applied.pop(app, None)
        try:
            serve.run_many(
                [RunTarget(target=application, name=app, route_prefix=prefix)],
                wait_for_ingress_deployment_creation=False,
                wait_for_applications_running=False,
            )
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"Ray Serve refused {app}: {exc}") from None
        except Exception as exc:
            raise _translated(exc, f"deploying {app}") from None
        self._applied[app] = fingerprint
        self._forget_packages(app, keep={spec["package_key"] for _, spec, _, _ in planned})

    def observe(self, deployment: Deployment) -> Observed:
        """What Serve runs for the deployment (replicas with their nodes, rollout state)
        and the load its ingress routed to each revision (see the module docstring).

        Raises:
            OSError: the cluster cannot be reached.
        """
        self._connect(deployment)
        details = self._details()
        app = app_name(deployment)
        seen = observe(details, app, self._endpoint(details, deployment))
        return replace(seen, load=self._read_load(details, app))

    def remove(self, deployment: Deployment) -> None:
        """Delete the application (waits for its replicas to stop) and its packages."""
        self._connect(deployment)
        serve = import_serve()
        app = app_name(deployment)
        self._applied.pop(app, None)
        self._load.pop(app, None)
        if app in (self._details().get("applications") or {}):
            try:
                serve.delete(app)
            except Exception as exc:
                raise _translated(exc, f"deleting {app}") from None
        self._forget_packages(app, keep=set())

    def close(self) -> None:
        """Disconnect from Ray if this backend connected; applications keep running."""
        import ray

        if self._owns_connection and ray.is_initialized():
            ray.shutdown()
        self._owns_connection = False
        self._address = None
        self._applied.clear()
        self._load.clear()

    # --- helpers -----------------------------------------------------------------------

    def _read_load(
        self, details: Mapping[str, Any], app: str
    ) -> dict[int, RevisionCounters] | None:
        """Every running ingress replica's counters, summed per routed revision; None
        when no ingress replica runs or none answered within :data:`LOAD_TIMEOUT_S`."""
        actors = ingress_actors(details, app)
        if not actors:
            self._load.pop(app, None)
            return None
        reports = _ask_ingress(actors)
        if not reports:
            return None
        now = self._clock()
        alive = {replica for replica, _ in actors}
        book = accumulate(self._load.get(app, LoadBook()), reports, now, alive)
        self._load[app] = book
        return load_of(book, routed_revisions(details, app), now)

    def _connect(self, deployment: Deployment) -> None:
        spec = deployment.backend
        if spec.kind != "ray":
            raise InvalidInput(
                f"deployment {deployment.name!r} runs on the {spec.kind} backend, not ray"
            )
        address = spec.address
        import ray

        if self._address is not None and ray.is_initialized():
            if address != self._address:
                raise Conflict(
                    f"this server is connected to Ray at {self._address}; deployment "
                    f"{deployment.name!r} wants {address}: one Ray cluster per server"
                )
            return
        if not ray.is_initialized():
            if address != "auto":
                probe(address, timeout_s=self._probe_timeout_s)
            _init(address)
            self._owns_connection = True
        else:
            _check_same_cluster(address)
        self._address = address
        serve = import_serve()
        try:
            serve.start(
                proxy_location="HeadOnly",
                http_options={"host": self._http_host, "port": self._http_port},
            )
        except Exception as exc:
            raise _translated(exc, "starting Ray Serve") from None

    def _details(self) -> Mapping[str, Any]:
        from ray.serve.context import _get_global_client

        try:
            client = _get_global_client()
            if client is None:
                raise ConnectionError("Serve is not running on the cluster")
            details: Mapping[str, Any] = client.get_serve_details()
        except Exception as exc:
            raise _translated(exc, "reading Serve's status") from None
        return details

    def _check_prefix(self, details: Mapping[str, Any], app: str, prefix: str) -> None:
        for name, info in (details.get("applications") or {}).items():
            if name != app and (info or {}).get("route_prefix") == prefix:
                raise Conflict(
                    f"route prefix {prefix} on this Ray cluster is taken by Serve "
                    f"application {name!r}; deployment names must be unique per cluster"
                )

    def _endpoint(self, details: Mapping[str, Any], deployment: Deployment) -> str:
        http = details.get("http_options") or {}
        host = str(http.get("host") or self._http_host)
        port = int(http.get("port") or self._http_port)
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - reading, not binding
            host = _head_host(deployment.backend.address)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}{route_prefix(deployment)}"

    def _ship(self, key: str, folder: Path) -> None:
        from ray.experimental.internal_kv import _internal_kv_exists, _internal_kv_put

        from modelyard.deploy._ray_app import pack

        if _internal_kv_exists(key, namespace=KV_NAMESPACE):
            return
        data = pack(folder)
        if len(data) > MAX_PACKAGE_BYTES:
            raise InvalidInput(
                f"the model package at {folder} packs to {len(data) // 2**20} MiB; the ray "
                f"backend ships at most {MAX_PACKAGE_BYTES // 2**20} MiB through Ray's store"
            )
        _internal_kv_put(key, data, overwrite=True, namespace=KV_NAMESPACE)

    def _forget_packages(self, app: str, *, keep: set[str]) -> None:
        from ray.experimental.internal_kv import _internal_kv_del, _internal_kv_list

        for raw in _internal_kv_list(f"packages/{app}/", namespace=KV_NAMESPACE):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            if key not in keep:
                _internal_kv_del(key, namespace=KV_NAMESPACE)


def _ask_ingress(actors: Sequence[tuple[str, str]]) -> dict[str, dict[int, RevisionCounters]]:
    """The load reports of the ingress replicas ``(replica id, actor name)`` that answer
    within :data:`LOAD_TIMEOUT_S`, by replica id. One gone meanwhile, slow or failing is
    left out: the load is a best-effort signal, and the next pass asks again."""
    import ray

    pending: dict[str, Any] = {}
    for replica, name in actors:
        try:
            actor = ray.get_actor(name, namespace=SERVE_ACTOR_NAMESPACE)
            pending[replica] = getattr(actor, LOAD_METHOD).remote()
        except Exception as exc:  # replaced between the details and this call
            logger.debug("ingress replica %s cannot be asked for its load: %r", replica, exc)
    if not pending:
        return {}
    refs = list(pending.values())
    done, _ = ray.wait(refs, num_returns=len(refs), timeout=LOAD_TIMEOUT_S)
    finished = set(done)
    reports: dict[str, dict[int, RevisionCounters]] = {}
    for replica, ref in pending.items():
        if ref not in finished:
            continue
        try:
            reports[replica] = parse_report(ray.get(ref))
        except Exception as exc:  # it died meanwhile, or answered something else
            logger.debug("ingress replica %s did not report its load: %r", replica, exc)
    return reports


def import_serve() -> Any:
    """``ray.serve``, imported without the deprecation warnings its own import raises
    (pydantic ``Field`` extras in Ray 2.60), which a ``-W error`` process would turn
    into an import failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from ray import serve
    return serve


def _pinned(deployment: Any, version: str) -> Any:
    """``deployment`` with its code version fixed (see the module docstring)."""
    try:
        return deployment.options(version=version, _internal=True)
    except (TypeError, ValueError):  # a Ray without the internal flag: unpinned
        return deployment


def probe(address: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Connect to ``address`` (``ray://host:port`` or ``host:port``) over TCP and close.

    The same fail-fast check the Ray executor makes (``modelyard.executors``), repeated
    here because ``deploy`` does not depend on ``executors``.

    Raises:
        ConnectionError: nothing accepts a connection within ``timeout_s``.
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except TimeoutError:
        raise ConnectionError(
            f"Ray at {address} does not answer: no connection within {timeout_s:g} s"
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ConnectionError(f"Ray at {address} does not answer: {reason}") from None


def _init(address: str) -> None:
    import ray

    kwargs: dict[str, Any] = {
        "address": address,
        "namespace": RAY_NAMESPACE,
        "log_to_driver": False,
    }
    if not address.startswith("ray://"):
        # Ray Client forwards unknown arguments to the server's ray.init; keep it minimal.
        kwargs["configure_logging"] = False
    try:
        ray.init(**kwargs)
    except BaseException as exc:
        # A failed init leaves state behind that breaks the next one in this process.
        ray.shutdown()
        if isinstance(exc, ConnectionError | TimeoutError):
            raise ConnectionError(f"Ray at {address} does not answer: {exc}") from None
        raise


def _check_same_cluster(address: str) -> None:
    """This process joined Ray before us (an executor, the user): it must be ``address``.

    Only a GCS address can be compared; ``auto`` and Ray Client addresses are trusted.

    Raises:
        Conflict: the process is connected to another cluster.
    """
    import ray

    if address == "auto" or address.startswith("ray://"):
        return
    current = str(ray.get_runtime_context().gcs_address or "")
    if current and current != address:
        raise Conflict(
            f"this process is already connected to Ray at {current}, not {address}: "
            "one Ray cluster per server"
        )


def _head_host(address: str) -> str:
    if address == "auto":
        import ray

        return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
    return address.removeprefix("ray://").rpartition(":")[0].strip("[]")


def _translated(exc: Exception, doing: str) -> Exception:
    """A Ray failure as the contract's errors: unreachable -> OSError, else ModelyardError."""
    import ray.exceptions as rex

    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    if isinstance(exc, OSError | rex.RaySystemError | rex.GetTimeoutError | rex.RayActorError):
        return ConnectionError(f"Ray Serve is unreachable while {doing}: {first}")
    if isinstance(exc, ModelyardError):
        return exc
    return ModelyardError(f"Ray Serve failed while {doing}: {type(exc).__name__}: {first}")
