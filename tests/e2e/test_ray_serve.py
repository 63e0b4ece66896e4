"""The Ray Serve backend on a real multi-node Ray cluster started on this machine.

One cluster (a head and a worker node, 2 logical CPUs each, dashboard off) and one
backend for the module: a deployment of a small scikit-learn model registered in a real
SQLite store and file blob store is applied, served through Serve's HTTP proxy (bound to
127.0.0.1) with OIP v2 and ``/invocations``, scaled from 1 to 3 replicas under load
across both nodes, survives the loss of the worker node with 0 failed requests (each
request retried with backoff), is rolled out to a second revision and rolled back, and
removed. A second, deliberately slow model shows requests caught on a lost node being
sent again by the ingress, and both autoscalers scaling out on their own under sustained
load: Serve's (``--autoscaler serve``, on its own ongoing-request metrics) and
modelyard's (``--autoscaler modelyard``: the real orchestrated controller fed by the
ingress's counters that ``observe`` reads). Without a cluster (not marked slow): what a
replica does with a shipped package (unpack, verify, answer through the runtime's ASGI
app), connection errors, and the decisions (weights, Serve options, status mapping) as
pure functions.

Nothing here asserts a duration; ``wait_for`` deadlines are only guards against a hang.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ray_support import RAY_MARKS, restore_nodes, wait_for

from modelyard.artifacts import BlobStore, FileBlobStore
from modelyard.core.backends import BackendSpec
from modelyard.core.clock import FakeClock
from modelyard.core.deployments import (
    Deployment,
    Revision,
    RevisionDraft,
    RuntimeSettings,
    ScalingConfig,
)
from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import Conflict, IntegrityError, InvalidInput
from modelyard.deploy._backend import Observed, RevisionTarget
from modelyard.deploy._orchestrated import OrchestratedController
from modelyard.deploy._ray_app import call_asgi, pack, unpack
from modelyard.deploy._ray_backend import RayServeBackend, import_serve
from modelyard.deploy._ray_plan import (
    INGRESS,
    choose,
    code_version,
    observe,
    revision_number,
    routes,
    scaling_options,
)
from modelyard.deploy._replicas import Package, ReplicaFactory
from modelyard.models import read_manifest
from modelyard.serving._demo import SlowModel, write_demo_package, write_python_package
from modelyard.serving.embedded import load_app
from modelyard.serving.server import ResolvedModel
from modelyard.store import MetadataStore, open_store
from modelyard.testing._ports import free_port
from modelyard.testing.ray_cluster import RayCluster, ray_cluster

COLUMNS = [f"f{i}" for i in range(20)]
ROW = [0.25 * (i % 7) - 0.5 for i in range(20)]
SETTINGS = RuntimeSettings(cpu=0.5, memory_mb=256)
TRIES = 10  # per request, with backoff: a request "fails" only if all of them do


def on_cluster(test: Any) -> Any:
    """Marks of a test that needs the cluster: slow, and Ray's known warnings ignored."""
    for mark in RAY_MARKS:
        test = mark(test)
    return test


def make_deployment(
    address: str, *revisions: Revision, name: str = "churn", **config: Any
) -> Deployment:
    """Deployment ``name`` of project ``default`` on the ray backend at ``address``."""
    return Deployment(
        id=1,
        project="default",
        name=name,
        config=ScalingConfig(**{"min_replicas": 1, "max_replicas": 3, **config}),
        status="active",
        stable_revision=revisions[0].number if revisions else None,
        previous_stable=None,
        rollout=None,
        revisions=revisions,
        generation=1,
        created_by="test",
        created_at_ms=0,
        updated_at_ms=0,
        backend=BackendSpec(kind="ray", address=address, autoscaler="modelyard"),
    )


# --- the world: a cluster, a store with two registered versions, one backend ------------


@dataclass
class World:
    cluster: RayCluster
    store: MetadataStore
    backend: RayServeBackend
    http_port: int
    packages: ReplicaFactory
    blobs: BlobStore
    root: Path
    versions: dict[int, int] = field(default_factory=dict)  # revision -> model version

    def deployment(self, *revisions: Revision, **config: Any) -> Deployment:
        return make_deployment(self.cluster.address, *revisions, **config)

    def url_of(self, name: str) -> str:
        return f"http://127.0.0.1:{self.http_port}/{name}"

    @property
    def url(self) -> str:
        return self.url_of("churn")


def revision(number: int, model_version: int, weight: int = 100, model: str = "churn") -> Revision:
    return Revision(
        number=number,
        model_name=model,
        model_version=model_version,
        model_ref=f"models:/{model}/{model_version}",
        settings=SETTINGS,
        state="ready",
        error="",
        weight=weight,
        shadow_percent=0.0,
        created_at_ms=0,
    )


def target(rev: Revision, replicas: int = 1, weight: int | None = None) -> RevisionTarget:
    return RevisionTarget(rev, rev.weight if weight is None else weight, 1, 3, replicas=replicas)


def register(store: MetadataStore, blobs: BlobStore, package: Path, model: str = "churn") -> int:
    """Register ``package`` as the next version of ``model`` (files in ``blobs``)."""
    files = []
    for path in sorted(p for p in package.rglob("*") if p.is_file()):
        info = blobs.put_file(path)
        files.append(ArtifactEntry(str(path.relative_to(package)), info.digest, info.size))
    manifest = next(f for f in files if f.path == "modelyard.yaml")
    return store.registry.create_version(
        "default",
        model,
        source_run_id=None,
        source_uri="upload",
        flavor=read_manifest(package).flavor,
        signature_json="",
        package_digest=manifest.digest,
        files=files,
        user="test",
    ).version


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("rayserve")
    package = write_demo_package(root / "logreg", "logreg")
    store = open_store(f"sqlite:///{root / 'm.db'}", FakeClock())
    store.migrate()
    if not any(p.name == "default" for p in store.auth.list_projects()):
        store.auth.create_project("default")
    blobs = FileBlobStore(root / "blobs")
    v1 = register(store, blobs, package)
    v2 = register(store, blobs, package)
    port = free_port()
    with ray_cluster(nodes=2, cpus_per_node=2) as cluster:
        packages = ReplicaFactory(store, blobs, root / "home", {})
        backend = RayServeBackend(packages, http_port=port)
        try:
            yield World(cluster, store, backend, port, packages, blobs, root, {1: v1, 2: v2})
        finally:
            backend.close()
            store.close()


# --- an HTTP client that retries, and a load loop ---------------------------------------


def call(
    base: str, method: str, path: str, body: object | None = None
) -> tuple[int, dict[str, str], Any]:
    host, _, rest = base.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    conn = http.client.HTTPConnection(name, int(port), timeout=30)
    try:
        data = None if body is None else json.dumps(body)
        headers = {} if body is None else {"Content-Type": "application/json"}
        conn.request(method, f"/{rest}{path}", data, headers)
        response = conn.getresponse()
        raw = response.read()
        try:
            payload: Any = json.loads(raw) if raw.strip() else None
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        conn.close()


def oip_body() -> dict[str, Any]:
    inputs = [
        {"name": c, "shape": [1], "datatype": "FP64", "data": [v]}
        for c, v in zip(COLUMNS, ROW, strict=True)
    ]
    return {"inputs": inputs}


def invocations_body() -> dict[str, Any]:
    return {"dataframe_split": {"columns": COLUMNS, "data": [ROW]}}


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    retried: int = 0
    resent: int = 0  # answered by a second replica after the ingress lost the first
    revisions: Counter[str] = field(default_factory=Counter)
    replicas: Counter[str] = field(default_factory=Counter)  # answers per Serve replica
    errors: list[str] = field(default_factory=list)  # of requests that failed every try
    retry_causes: Counter[str] = field(default_factory=Counter)  # what made clients retry


CHURN_REQUESTS = (("/v2/models/churn/infer", oip_body), ("/invocations", invocations_body))


def predict_with_retry(
    base: str, path: str, body: object, tally: Tally, lock: threading.Lock
) -> None:
    """One prediction, retried up to TRIES times with backoff."""
    last = first = ""
    for attempt in range(TRIES):
        try:
            status, headers, payload = call(base, "POST", path, body)
        except OSError as exc:
            status, headers, payload = 0, {}, repr(exc)
        if status == 200:
            with lock:
                tally.ok += 1
                tally.retried += attempt > 0
                if attempt > 0:
                    tally.retry_causes[first[:120]] += 1
                tally.resent += "x-modelyard-resent" in headers
                tally.revisions[headers.get("x-modelyard-revision", "?")] += 1
                tally.replicas[headers.get("x-modelyard-replica", "?")] += 1
            return
        last = f"{status}: {payload}"
        first = first or last
        time.sleep(min(2.0, 0.1 * 2**attempt))
    with lock:
        tally.failed += 1
        tally.errors.append(last)


class Load:
    """``workers`` threads sending predictions back to back until stopped, cycling through
    ``requests`` (path, body maker)."""

    def __init__(
        self, base: str, workers: int = 4, requests: Sequence[tuple[str, Any]] = CHURN_REQUESTS
    ) -> None:
        self.requests = requests
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(base, i), daemon=True) for i in range(workers)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self, base: str, worker: int) -> None:
        n = worker
        while not self._stop.is_set():
            path, body = self.requests[n % len(self.requests)]
            predict_with_retry(base, path, body(), self.tally, self._lock)
            n += 1

    def served(self) -> int:
        with self._lock:
            return self.tally.ok + self.tally.failed


# --- waiting on Serve -------------------------------------------------------------------


def serve_details() -> dict[str, Any]:
    """Serve's own account of itself (what ``serve status`` shows), as a dict."""
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    assert client is not None
    details: dict[str, Any] = client.get_serve_details()
    return details


def rolled_out(world: World, dep: Deployment, ready: int, avoid: str | None = None) -> Observed:
    """Wait until ``observe`` says rolled out with ``ready`` replicas, none of them on
    node ``avoid``; the Observed that said so."""

    def probe() -> Observed | None:
        seen = world.backend.observe(dep)
        up = [r for r in seen.replicas if r.state == "ready"]
        if seen.rolled_out and len(up) == ready and all(r.node != avoid for r in up):
            return seen
        time.sleep(0.25)
        return None

    return wait_for(f"{dep.name} to roll out with {ready} ready", probe, 150)


@pytest.fixture(scope="module")
def first(world: World) -> Deployment:
    """Revision 1 (model version 1) applied with one replica and rolled out."""
    dep = world.deployment(revision(1, world.versions[1]))
    world.backend.apply(dep, [target(dep.revisions[0])])
    rolled_out(world, dep, ready=1)
    return dep


# --- without a cluster ------------------------------------------------------------------


def test_an_address_nobody_answers_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    import ray

    # Placed before the cluster tests: once this process has joined the module's
    # cluster, another address is a Conflict instead (tested below).
    assert not ray.is_initialized()
    backend = RayServeBackend(FakePackages(), probe_timeout_s=1.0)
    port = free_port()
    dep = replace(
        make_deployment("127.0.0.1:1", revision(1, 1)),
        backend=BackendSpec(kind="ray", address=f"127.0.0.1:{port}"),
    )
    with pytest.raises(ConnectionError, match=f"Ray at 127.0.0.1:{port} does not answer"):
        backend.apply(dep, [target(dep.revisions[0])])
    with pytest.raises(OSError, match="does not answer"):
        backend.observe(
            replace(dep, backend=BackendSpec(kind="ray", address=f"ray://127.0.0.1:{port}"))
        )


def test_a_deployment_of_another_backend_is_refused() -> None:
    backend = RayServeBackend(FakePackages())
    dep = replace(make_deployment("127.0.0.1:1", revision(1, 1)), backend=BackendSpec())
    with pytest.raises(InvalidInput, match="runs on the local backend, not ray"):
        backend.apply(dep, [])
    with pytest.raises(InvalidInput, match="http_port"):
        RayServeBackend(FakePackages(), http_port=0)


class FakePackages:
    def package(self, project: str, rev: Revision) -> Package:
        raise AssertionError("not reached: the connection fails first")


# --- the cluster tests ------------------------------------------------------------------


@on_cluster
def test_serves_oip_and_invocations_through_the_serve_proxy(
    world: World, first: Deployment
) -> None:
    seen = world.backend.observe(first)
    assert seen.rolled_out
    assert seen.endpoint == world.url
    assert [(r.revision, r.state) for r in seen.replicas] == [(1, "ready")]
    assert seen.replicas[0].node in world.cluster.node_ids
    ingress = serve_details()["applications"]["default-churn"]["deployments"][INGRESS]
    # Beside the HTTP proxy on the head node: a worker's loss never cuts the way in.
    assert {r["node_id"] for r in ingress["replicas"]} == {world.cluster.node_ids[0]}
    assert len(ingress["replicas"]) == 2
    status, _, payload = call(world.url, "GET", "/v2/health/live")
    assert (status, payload) == (200, {"live": True})
    status, _, payload = call(world.url, "GET", "/v2/health/ready")
    assert (status, payload) == (200, {"ready": True})
    status, _, meta = call(world.url, "GET", "/v2/models/churn")
    assert status == 200
    assert meta["name"] == "churn"
    assert len(meta["inputs"]) == 20
    status, headers, answer = call(world.url, "POST", "/v2/models/churn/infer", oip_body())
    assert status == 200, answer
    assert headers["x-modelyard-revision"] == "1"
    assert answer["model_version"] == str(world.versions[1])
    assert answer["outputs"][0]["data"][0] in (0, 1)
    status, _, answer = call(world.url, "POST", "/invocations", invocations_body())
    assert status == 200, answer
    assert answer["predictions"][0] in (0, 1)
    # The runtime's own validation answers, through the ingress, with its own status.
    status, _, answer = call(world.url, "POST", "/invocations", {"dataframe_split": {}})
    assert status == 400, answer
    status, _, answer = call(world.url, "GET", "/v2/models/nope")
    assert status == 404
    assert "nope" in answer["error"]


@on_cluster
def test_a_restarted_server_applying_the_same_state_keeps_the_replicas(
    world: World, first: Deployment
) -> None:
    before = {r.id for r in world.backend.observe(first).replicas}
    # A new backend (as after a server restart) has no memory of what it applied, so it
    # redeploys; the pinned versions make Serve keep the running replicas.
    again = RayServeBackend(world.packages, http_port=world.http_port)
    try:
        again.apply(first, [target(first.revisions[0])])
        after = rolled_out(world, first, ready=1)
    finally:
        again.close()  # it reused this process's connection: nothing to disconnect
    assert {r.id for r in after.replicas} == before
    world.backend.apply(first, [target(first.revisions[0])])  # unchanged: not redeployed
    assert {r.id for r in world.backend.observe(first).replicas} == before


@on_cluster
def test_serve_autoscaling_is_deployed_from_the_scaling_config(world: World) -> None:
    rev = revision(1, world.versions[1])
    dep = replace(
        make_deployment(
            world.cluster.address, rev, name="auto", target_concurrency=3.0, stable_window_s=90.0
        ),
        backend=BackendSpec(kind="ray", address=world.cluster.address, autoscaler="serve"),
    )
    try:
        world.backend.apply(dep, [RevisionTarget(rev, 100, 1, 2)])
        rolled_out(world, dep, ready=1)
        config = serve_details()["applications"]["default-auto"]["deployments"]["rev-1"]
        auto = config["deployment_config"]["autoscaling_config"]
        assert (auto["min_replicas"], auto["max_replicas"]) == (1, 2)
        assert auto["target_ongoing_requests"] == 3.0
        assert (auto["upscale_delay_s"], auto["downscale_delay_s"]) == (6.0, 90.0)
        status, _, answer = call(world.url_of("auto"), "POST", "/invocations", invocations_body())
        assert status == 200, answer
    finally:
        world.backend.remove(dep)


# --- autoscaling under load: Serve's own, and modelyard's --------------------------------

BUSY_BODY = {"dataframe_split": {"columns": ["f0", "f1"], "data": [[0.0, 1.0]]}}
BUSY_SETTINGS = RuntimeSettings(cpu=0.25, memory_mb=256)
BUSY_WORKERS = 6  # clients sending back to back: about 6 requests always in flight


@pytest.fixture(scope="module")
def busy(world: World) -> int:
    """Model ``busy`` (100 ms a call, so requests stay in flight): its version."""
    package = write_python_package(world.root / "busy", SlowModel(0.1), n_columns=2)
    return register(world.store, world.blobs, package, model="busy")


def busy_load(world: World, name: str) -> Load:
    return Load(world.url_of(name), BUSY_WORKERS, [("/invocations", lambda: BUSY_BODY)])


def ready_count(seen: Observed, revision: int = 1) -> int:
    return sum(1 for r in seen.replicas if r.revision == revision and r.state == "ready")


@on_cluster
def test_serves_own_autoscaler_scales_out_under_sustained_load(world: World, busy: int) -> None:
    """``--autoscaler serve``: Serve decides, on its own ongoing-request metrics (6
    clients, 1 per replica wanted, at most 3), and ``observe`` shows the replicas it
    added, with the ingress's load beside them."""
    restore_nodes(world.cluster, live=2)
    rev = replace(revision(1, busy, model="busy"), settings=BUSY_SETTINGS)
    dep = replace(
        make_deployment(
            world.cluster.address,
            rev,
            name="busy-serve",
            target_concurrency=1.0,
            panic_window_s=1.0,  # Serve's upscale_delay_s
            stable_window_s=300.0,  # its downscale_delay_s: no scale-down within the test
        ),
        backend=BackendSpec(kind="ray", address=world.cluster.address, autoscaler="serve"),
    )
    try:
        world.backend.apply(dep, [RevisionTarget(rev, 100, 1, 3)])
        rolled_out(world, dep, ready=1)
        loads: list[int] = []

        def scaled_out() -> Observed | None:
            seen = world.backend.observe(dep)
            if seen.load is not None:
                loads.append(seen.load[1].in_flight)
            if ready_count(seen) >= 3:
                return seen
            time.sleep(0.5)
            return None

        with busy_load(world, "busy-serve") as load:
            wait_for("load to flow", lambda: load.served() >= 20 or None, 60)
            started = time.monotonic()
            seen = wait_for("Serve to scale busy-serve out on its own", scaled_out, 120)
            took = time.monotonic() - started
        tally = load.tally
        rev1 = serve_details()["applications"]["default-busy-serve"]["deployments"]["rev-1"]
        print(
            f"Serve's autoscaler: 1 -> {ready_count(seen)} ready {took:.1f} s after the load"
            f" started; target {rev1['target_num_replicas']}; {tally.ok} ok, {tally.failed}"
            f" failed; in flight at the ingress per observe: {loads}"
        )
        assert tally.failed == 0, tally.errors[:5]
        assert rev1["target_num_replicas"] == 3
        assert seen.load is not None
        assert seen.load[1].arrivals >= 20
        assert max(loads) > 1  # the ingress saw the concurrency Serve scaled on
    finally:
        world.backend.remove(dep)


@on_cluster
def test_modelyards_autoscaler_scales_out_on_the_ingress_load_and_back_when_idle(
    world: World, busy: int
) -> None:
    """``--autoscaler modelyard``: the real orchestrated controller, its passes run here,
    reads the load through ``observe`` (every ingress replica's counters), ticks the KPA
    policy and applies the count it decides: out under load, back to one replica once
    the load has stopped for a stable window (10 s here)."""
    restore_nodes(world.cluster, live=2)
    config = ScalingConfig(
        min_replicas=1, max_replicas=3, target_concurrency=1.0, stable_window_s=10.0
    )
    draft = RevisionDraft("busy", busy, f"models:/busy/{busy}", BUSY_SETTINGS, weight=100)
    spec = BackendSpec(kind="ray", address=world.cluster.address, autoscaler="modelyard")
    dep = world.store.deployments.create("default", "busy-ours", config, draft, "t", backend=spec)
    ctl = OrchestratedController(world.store, {"ray": lambda _spec: world.backend})

    def passes_until(what: str, ready: int, timeout_s: float) -> float:
        """Run controller passes until the records show exactly ``ready`` replicas, all
        ready; the seconds it took."""
        started = time.monotonic()

        def probe() -> bool | None:
            ctl.run_once()
            records = world.store.deployments.replicas(dep.id, active_only=True)
            if len(records) == ready and all(r.state == "ready" for r in records):
                return True
            time.sleep(0.5)
            return None

        wait_for(what, probe, timeout_s)
        return time.monotonic() - started

    try:
        passes_until("revision 1 to run one replica", 1, 120)
        with busy_load(world, "busy-ours") as load:
            wait_for("load to flow", lambda: load.served() >= 20 or None, 60)
            up_s = passes_until("modelyard to scale busy-ours out", 3, 120)
            seen = world.backend.observe(dep)
        tally = load.tally
        down_s = passes_until("modelyard to scale busy-ours back in", 1, 120)
        scale = world.store.deployments.events(dep.id, kind="scale")
        applied = [
            e.message
            for e in world.store.deployments.events(dep.id, kind="orchestrator")
            if e.message.startswith("applied")
        ]
        print(
            f"modelyard's autoscaler: 3 ready {up_s:.1f} s after the load flowed, back to 1"
            f" {down_s:.1f} s after it stopped; {tally.ok} ok, {tally.failed} failed;"
            f" replicas per node {dict(Counter(r.node[:8] for r in seen.replicas))};"
            f" scale events: {[(e.message, e.data.get('mean_concurrency')) for e in scale]};"
            f" {applied}"
        )
        assert tally.failed == 0, tally.errors[:5]
        assert ready_count(seen) == 3
        decided = [e for e in scale if "desired" in e.data and "mean_concurrency" in e.data]
        up = next(e for e in decided if e.data["desired"] == 3)
        assert up.data["mean_concurrency"] > 1.0  # the ingress's time integral, per tick
        assert up.data["arrivals"] > 0
        down = decided[-1]
        assert (down.data["desired"], down.data["in_flight"]) == (1, 0)
        assert decided.index(up) < decided.index(down)
        assert "revision 1 (100%, 3 replica(s))" in applied[-2]
        assert applied[-1].endswith("revision 1 (100%, 1 replica(s))")
    finally:
        world.backend.remove(dep)


@on_cluster
def test_scales_to_three_across_nodes_under_load_and_loses_a_node_without_failures(
    world: World, first: Deployment
) -> None:
    cluster = world.cluster
    with Load(world.url) as load:
        wait_for("load to flow", lambda: load.served() >= 20 or None, 60)
        before = {r.id for r in world.backend.observe(first).replicas}
        world.backend.apply(first, [target(first.revisions[0], replicas=3)])
        scaled = rolled_out(world, first, ready=3)
        assert before < {r.id for r in scaled.replicas}  # scaled in place, none restarted
        nodes = Counter(r.node for r in scaled.replicas if r.state == "ready")
        print(f"replicas per node after scaling: {dict(nodes)}")
        assert len(nodes) >= 2, f"all replicas on one node: {nodes}"
        victim_id = next(n for n in nodes if n != cluster.node_ids[0])
        victims = {r.id for r in scaled.replicas if r.node == victim_id}
        # The lost replicas must have been serving: a replica that has just become ready
        # may not have been picked yet (CI once killed one that had answered nothing).
        wait_for(
            "every replica on the victim node to answer",
            lambda: all(load.tally.replicas[r] > 0 for r in victims) or None,
            60,
        )
        before_kill = load.served()
        cluster.kill_node(cluster.node_ids.index(victim_id))
        healed = rolled_out(world, first, ready=3, avoid=victim_id)
        wait_for("load after the kill", lambda: load.served() >= before_kill + 50 or None, 90)
    tally = load.tally
    print(
        f"after the node loss: {tally.ok} ok, {tally.failed} failed, {tally.resent} re-sent,"
        f" {tally.retried} retried, {[tally.replicas[r] for r in victims]} answered by the"
        " lost replica(s),"
        f" replicas per node {dict(Counter(r.node for r in healed.replicas))}"
    )
    assert tally.failed == 0, tally.errors[:5]
    assert tally.ok > before_kill
    assert all(tally.replicas[r] > 0 for r in victims), (victims, tally.replicas)
    assert set(tally.revisions) == {"1"}


@on_cluster
def test_rolls_out_a_second_revision_and_rolls_back(world: World, first: Deployment) -> None:
    one = first.revisions[0]
    two = revision(2, world.versions[2])
    both = world.deployment(replace(one, weight=0), two)
    world.backend.apply(both, [target(two, weight=100)])
    seen = rolled_out(world, both, ready=1)
    assert {r.revision for r in seen.replicas} == {2}
    status, headers, answer = call(world.url, "POST", "/v2/models/churn/infer", oip_body())
    assert (status, headers["x-modelyard-revision"]) == (200, "2"), answer
    assert answer["model_version"] == str(world.versions[2])
    # Rollback: the previous revision's target at weight 100.
    world.backend.apply(both, [target(replace(one, weight=100))])
    seen = rolled_out(world, both, ready=1)
    assert {r.revision for r in seen.replicas} == {1}
    for _ in range(5):
        status, headers, answer = call(world.url, "POST", "/v2/models/churn/infer", oip_body())
        assert (status, headers["x-modelyard-revision"]) == (200, "1"), answer


@on_cluster
def test_a_package_that_fails_verification_is_reported_as_a_failed_replica(
    world: World, tmp_path: Path
) -> None:
    class Tampered:
        """The real package, with one registered digest changed: the replica's loader
        must refuse it on whatever node it lands."""

        def __init__(self, inner: ReplicaFactory) -> None:
            self.inner = inner

        def package(self, project: str, rev: Revision) -> Package:
            real = self.inner.package(project, rev)
            return replace(real, expected_files={**real.expected_files, "model.pkl": "0" * 64})

    backend = RayServeBackend(Tampered(world.packages), http_port=world.http_port)
    dep = replace(world.deployment(revision(1, world.versions[1])), name="broken")
    try:
        backend.apply(dep, [target(dep.revisions[0])])

        def failed() -> Observed | None:
            seen = backend.observe(dep)
            if any(r.state == "failed" for r in seen.replicas):
                return seen
            time.sleep(0.5)
            return None

        seen = wait_for("the broken revision to fail", failed, 150)
        reason = next(r.reason for r in seen.replicas if r.state == "failed")
        assert "does not match the digest" in reason or "IntegrityError" in reason, reason
        assert not seen.rolled_out
    finally:
        backend.remove(dep)
        backend.close()


@on_cluster
def test_requests_caught_on_a_lost_node_are_answered_by_another_replica(world: World) -> None:
    """A model that takes 200 ms a call keeps requests in flight on every replica, so the
    node loss surely catches some mid-request: the ingress sends those again."""
    cluster = world.cluster
    restore_nodes(cluster, live=2)
    package = write_python_package(world.root / "slow", SlowModel(0.2), n_columns=2)
    rev = replace(
        revision(1, register(world.store, world.blobs, package, model="slow"), model="slow"),
        settings=RuntimeSettings(cpu=0.25, memory_mb=256),
    )
    dep = make_deployment(cluster.address, rev, name="slow")
    body = {"dataframe_split": {"columns": ["f0", "f1"], "data": [[0.0, 1.0]]}}
    try:
        world.backend.apply(dep, [target(rev, replicas=3)])
        seen = rolled_out(world, dep, ready=3)
        on_workers = [r.node for r in seen.replicas if r.node != cluster.node_ids[0]]
        assert on_workers, "no replica on the worker node"
        victims = {r.id for r in seen.replicas if r.node == on_workers[0]}
        with Load(
            world.url_of("slow"), workers=6, requests=[("/invocations", lambda: body)]
        ) as load:
            wait_for("load to flow", lambda: load.served() >= 30 or None, 60)
            cluster.kill_node(cluster.node_ids.index(on_workers[0]))
            healed = rolled_out(world, dep, ready=3, avoid=on_workers[0])
            after = load.served()
            wait_for("load after the kill", lambda: load.served() >= after + 30 or None, 90)
        tally = load.tally
        print(
            f"slow model, node lost mid-request: {tally.ok} ok, {tally.failed} failed,"
            f" {tally.resent} re-sent by the ingress, {tally.retried} retried by the client,"
            f" replicas per node after {dict(Counter(r.node[:8] for r in healed.replicas))};"
            f" clients retried after: {dict(tally.retry_causes)};"
            f" answers of the lost replicas: {[tally.replicas[r] for r in victims]}"
        )
        assert tally.failed == 0, tally.errors[:5]
        # The lost replicas were answering their share until the node went.
        assert all(tally.replicas[r] > 0 for r in victims), (victims, tally.replicas)
    finally:
        world.backend.remove(dep)


@on_cluster
def test_a_taken_route_prefix_or_another_cluster_is_refused(
    world: World, first: Deployment
) -> None:
    other = replace(first, project="other")
    with pytest.raises(Conflict, match="route prefix /churn"):
        world.backend.apply(other, [target(other.revisions[0])])
    elsewhere = replace(first, backend=BackendSpec(kind="ray", address="127.0.0.1:1"))
    with pytest.raises(Conflict, match="one Ray cluster per server"):
        world.backend.apply(elsewhere, [target(first.revisions[0])])
    fresh = RayServeBackend(world.packages)  # joined by this process already, elsewhere
    with pytest.raises(Conflict, match="already connected to Ray at"):
        fresh.observe(elsewhere)


@on_cluster
def test_remove_deletes_the_application(world: World, first: Deployment) -> None:
    world.backend.remove(first)
    seen = world.backend.observe(first)
    assert (seen.replicas, seen.rolled_out) == ((), False)
    assert "not deployed" in seen.message
    status, _, _ = call(world.url, "GET", "/v2/health/live")
    assert status == 404
    from ray.experimental.internal_kv import _internal_kv_list

    assert _internal_kv_list("packages/default-churn/", namespace="modelyard") == []
    world.backend.remove(first)  # idempotent


# --- the revision runtime in this process (what a replica does, without Ray) -------------


def test_a_packed_package_loads_verified_and_answers_like_modelyard_serve(tmp_path: Path) -> None:
    package = write_demo_package(tmp_path / "logreg", "logreg")
    unpack(pack(package), tmp_path / "unpacked")
    digests = read_manifest(package).digests()
    resolved = ResolvedModel(tmp_path / "unpacked", "churn", "7", digests)

    async def scenario() -> list[tuple[int, Any]]:
        app = load_app(resolved)
        await app.start()
        try:
            answers = []
            for method, path, body in [
                ("POST", "/invocations", invocations_body()),
                ("POST", "/v2/models/churn/infer", oip_body()),
                ("GET", "/v2/health/ready", None),
                ("POST", "/invocations", {"nope": 1}),
            ]:
                data = b"" if body is None else json.dumps(body).encode()
                headers = [(b"content-type", b"application/json")]
                status, _, raw = await call_asgi(app.app, (method, path, b"", headers, data))
                answers.append((status, json.loads(raw)))
            return answers
        finally:
            await app.stop()

    invocations, infer, ready, bad = asyncio.run(scenario())
    assert invocations[0] == 200
    assert invocations[1]["predictions"][0] in (0, 1)
    assert infer[0] == 200
    assert infer[1]["model_version"] == "7"
    assert ready == (200, {"ready": True})
    assert bad[0] == 400


def test_a_package_with_a_changed_file_is_refused_by_the_loader(tmp_path: Path) -> None:
    package = write_demo_package(tmp_path / "logreg", "logreg")
    digests = {**read_manifest(package).digests(), "model.pkl": "0" * 64}
    unpack(pack(package), tmp_path / "unpacked")
    with pytest.raises(IntegrityError, match=r"model\.pkl"):
        load_app(ResolvedModel(tmp_path / "unpacked", "churn", "1", digests))


def test_unpack_refuses_a_path_leaving_the_folder(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(tarfile.OutsideDestinationError):
        unpack(buffer.getvalue(), tmp_path / "inside")
    assert not (tmp_path / "evil.txt").exists()


# --- the pure decisions -----------------------------------------------------------------

tables = st.lists(
    st.tuples(st.integers(1, 50), st.integers(0, 100)),
    min_size=1,
    max_size=5,
    unique_by=lambda t: t[0],
).map(lambda rows: [[f"rev-{n}", w] for n, w in rows])


@given(tables, st.floats(0.0, 1.0, allow_nan=False))
def test_choose_picks_a_routed_revision(table: list[list[Any]], u: float) -> None:
    chosen = choose(table, u)
    names = [row[0] for row in table]
    assert chosen in names
    if any(w > 0 for _, w in table):
        assert dict((n, w) for n, w in table)[chosen] > 0


@given(tables)
def test_choose_splits_traffic_exactly_by_weight(table: list[list[Any]]) -> None:
    total = sum(w for _, w in table)
    draws = total or len(table)
    picks = Counter(choose(table, (i + 0.5) / draws) for i in range(draws))
    if total:
        assert picks == Counter({n: w for n, w in table if w > 0})
    else:  # nothing weighted yet: each revision once
        assert picks == Counter({n: 1 for n, _ in table})


@given(tables, st.floats(0.0, 1.0, allow_nan=False), st.data())
def test_choose_avoids_a_lost_revision_when_another_can_take_traffic(
    table: list[list[Any]], u: float, data: st.DataObject
) -> None:
    avoid = data.draw(st.sampled_from([row[0] for row in table]))
    chosen = choose(table, u, avoid=avoid)
    others = [row for row in table if row[0] != avoid]
    weighted = any(w > 0 for _, w in table)
    if others and (any(w > 0 for _, w in others) or not weighted):
        assert chosen != avoid
    else:  # the only revision that may take traffic: it again (another replica of it)
        assert chosen == avoid


def test_choose_without_routes_is_none() -> None:
    assert choose([], 0.3) is None


def _dep(autoscaler: Literal["serve", "modelyard"], **config: Any) -> Deployment:
    dep = make_deployment("127.0.0.1:1", revision(1, 1), **config)
    return replace(
        dep, backend=BackendSpec(kind="ray", address="127.0.0.1:1", autoscaler=autoscaler)
    )


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 5), st.integers(1, 8), st.floats(0.5, 64), st.floats(1, 120))
def test_serve_autoscaling_follows_the_target_and_the_config(
    low: int, span: int, concurrency: float, grace: float
) -> None:
    high = low + span
    dep = _dep(
        "serve",
        min_replicas=low,
        max_replicas=high,
        target_concurrency=concurrency,
        idle_grace_s=grace,
    )
    options = scaling_options(dep, RevisionTarget(dep.revisions[0], 100, low, high))
    auto = options["autoscaling_config"]
    assert "num_replicas" not in options
    assert (auto["min_replicas"], auto["max_replicas"]) == (low, high)
    assert low <= auto["initial_replicas"] <= high
    assert auto["initial_replicas"] >= 1
    assert auto["target_ongoing_requests"] == concurrency
    assert auto["upscale_delay_s"] == dep.config.panic_window_s
    assert auto["downscale_delay_s"] == dep.config.stable_window_s
    assert auto.get("downscale_to_zero_delay_s") == (grace if low == 0 else None)
    import_serve()  # first, so its import warnings are not errors here
    from ray.serve.config import AutoscalingConfig

    AutoscalingConfig(**auto)  # Serve accepts it


@given(st.integers(0, 10) | st.none())
def test_modelyard_policy_sets_the_replica_count(replicas: int | None) -> None:
    dep = _dep("modelyard", min_replicas=1)
    options = scaling_options(dep, RevisionTarget(dep.revisions[0], 100, 1, 10, replicas))
    if replicas is None:
        assert options == {"num_replicas": 1}
    elif replicas == 0:  # Serve refuses num_replicas=0: scale-from-zero with one at most
        auto = options["autoscaling_config"]
        assert (auto["min_replicas"], auto["max_replicas"], auto["initial_replicas"]) == (0, 1, 0)
    else:
        assert options == {"num_replicas": replicas}


def test_code_versions_are_stable_and_change_with_what_replicas_are_built_from() -> None:
    spec = {"package_key": "packages/a/1", "runtime": {"batching": True}}
    assert code_version("revision", spec, {"num_cpus": 1}) == code_version(
        "revision", dict(reversed(list(spec.items()))), {"num_cpus": 1}
    )
    assert code_version("revision", spec, {"num_cpus": 1}) != code_version(
        "revision", spec, {"num_cpus": 2}
    )
    assert code_version("revision", spec, {}) != code_version(
        "revision", {**spec, "package_key": "packages/a/2"}, {}
    )


def test_routes_are_ordered_by_revision() -> None:
    a, b = revision(3, 1, 10), revision(1, 1, 90)
    assert routes([target(a), target(b)]) == [["rev-1", 90], ["rev-3", 10]]
    assert revision_number("rev-12") == 12
    assert revision_number(INGRESS) is None
    assert revision_number("rev-x") is None


def _details(deployments: dict[str, Any], app_status: str = "RUNNING") -> dict[str, Any]:
    return {"applications": {"default-churn": {"status": app_status, "deployments": deployments}}}


def _ingress(table: list[list[Any]], status: str = "HEALTHY") -> dict[str, Any]:
    return {
        "status": status,
        "target_num_replicas": 1,
        "replicas": [{"replica_id": "i1", "state": "RUNNING", "node_id": "n0"}],
        "deployment_config": {"user_config": {"routes": table}},
    }


def _rev(
    states: list[str], target: int, status: str = "HEALTHY", message: str = ""
) -> dict[str, Any]:
    return {
        "status": status,
        "message": message,
        "target_num_replicas": target,
        "replicas": [
            {"replica_id": f"r{i}", "state": s, "node_id": f"n{i % 2}", "start_time_s": 1.5}
            for i, s in enumerate(states)
        ],
    }


def test_observe_maps_serve_replicas_and_judges_the_rollout() -> None:
    done = _details({INGRESS: _ingress([["rev-1", 100]]), "rev-1": _rev(["RUNNING"] * 2, 2)})
    seen = observe(done, "default-churn", "http://x/churn")
    assert seen.rolled_out
    assert seen.endpoint == "http://x/churn"
    assert [(r.revision, r.state, r.node, r.started_at_ms) for r in seen.replicas] == [
        (1, "ready", "n0", 1500),
        (1, "ready", "n1", 1500),
    ]
    scaling = _details(
        {
            INGRESS: _ingress([["rev-1", 100]]),
            "rev-1": _rev(["RUNNING", "STARTING"], 2, status="UPSCALING"),
        }
    )
    seen = observe(scaling, "default-churn", None)
    assert not seen.rolled_out
    assert [r.state for r in seen.replicas] == ["ready", "starting"]
    assert "rev-1 upscaling" in seen.message
    leftover = _details(
        {
            INGRESS: _ingress([["rev-2", 100]]),
            "rev-1": _rev(["STOPPING"], 0),
            "rev-2": _rev(["RUNNING"], 1),
        }
    )
    seen = observe(leftover, "default-churn", None)
    assert not seen.rolled_out
    assert sorted((r.revision, r.state) for r in seen.replicas) == [(1, "draining"), (2, "ready")]


def test_observe_reports_a_failed_deploy_as_a_failed_replica_with_the_reason() -> None:
    message = (
        "Failed to update the deployments ['rev-1'].\nTraceback ...\n"
        "modelyard.core.errors.IntegrityError: 'model.pkl' does not match the digest\n"
    )
    details = _details(
        {
            INGRESS: _ingress([["rev-1", 100]]),
            "rev-1": _rev([], 1, status="DEPLOY_FAILED", message=message),
        },
        app_status="DEPLOY_FAILED",
    )
    seen = observe(details, "default-churn", None)
    assert not seen.rolled_out
    (failed,) = seen.replicas
    assert (failed.revision, failed.state) == (1, "failed")
    assert (
        failed.reason
        == "modelyard.core.errors.IntegrityError: 'model.pkl' does not match the digest"
    )
    assert "deploy_failed" in seen.message


def test_observe_without_the_application() -> None:
    seen = observe({"applications": {}}, "default-churn", None)
    assert (seen.replicas, seen.rolled_out) == ((), False)
    assert seen.message == "application default-churn is not deployed"
