"""The Kubernetes backend through the real ``kubernetes`` client library, against a
replayed API transcript.

No Kubernetes API server can run on this machine (no kube-apiserver, kind, k3s or
envtest binary is obtainable), so this is as far as an honest test goes without one: a
tiny HTTP server on 127.0.0.1 replays ``tests/data/k8s_transcript/*.json``. **The
transcript was written by hand from the Kubernetes API reference and API-concepts
pages (server-side apply, ``deletecollection``, label selectors, ``Status`` errors),
not recorded from a cluster.** Each entry is the request the backend must send (method,
path, query, content type, a subset of the JSON body) and the answer the API server
documents for it. The backend is configured from a kubeconfig file pointing at the
replay server, so every request is built and sent by the client library itself, and the
tests assert on what arrived on the wire: one server-side-apply ``PATCH`` per object
with ``application/apply-patch+yaml``, ``fieldManager=modelyard`` and ``force=true``, the
bearer token, and the exact label selectors of the deletes.

What this cannot show: that a real API server accepts the objects (the renderer's tests
run ``kubernetes-validate --strict`` for that), merges fields as assumed, or that pods
really go through the states listed here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from modelyard.core.backends import BackendSpec
from modelyard.core.deployments import Deployment, Revision, RuntimeSettings, ScalingConfig
from modelyard.core.errors import InvalidInput, PermissionDenied
from modelyard.deploy._backend import ObservedReplica, RevisionTarget
from modelyard.deploy._kubernetes_backend import KubernetesBackend

TRANSCRIPT = Path(__file__).parents[2] / "data" / "k8s_transcript"
TOKEN = "transcript-token"


@dataclass
class Seen:
    """One request as it arrived."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Replay:
    """The entries still to be answered, what arrived, and any mismatch."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self, name: str) -> None:
        with self.lock:
            self.entries.extend(json.loads((TRANSCRIPT / name).read_text())["entries"])

    def answer(self, seen: Seen) -> tuple[int, Any]:
        with self.lock:
            self.seen.append(seen)
            if not self.entries:
                problem = f"unexpected {seen.method} {seen.path}: the transcript is exhausted"
                self.mismatches.append(problem)
                return 418, {"kind": "Status", "message": problem}
            entry = self.entries.pop(0)
            problem = mismatch(entry["request"], seen)
            if problem:
                self.mismatches.append(problem)
                return 418, {"kind": "Status", "message": problem}
            response = entry["response"]
            return int(response["status"]), response.get("body")


def subset(expected: Any, actual: Any) -> bool:
    """Whether ``expected`` is contained in ``actual``: dicts by key, lists item by item
    (same length), the rest by value."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(subset(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual)


def mismatch(expected: dict[str, Any], seen: Seen) -> str:
    """Why ``seen`` is not the request the transcript expects next ('' if it is)."""
    want = (expected["method"], expected["path"], expected.get("query", {}))
    got = (seen.method, seen.path, seen.query)
    if want != got:
        return f"expected {want}, got {got}"
    content_type = expected.get("content_type")
    if content_type != seen.headers.get("content-type"):
        return f"{seen.method} {seen.path}: content type {seen.headers.get('content-type')!r}"
    if "body" in expected and not subset(expected["body"], seen.body):
        return f"{seen.method} {seen.path}: body {seen.body!r} lacks {expected['body']!r}"
    return ""


class Handler(BaseHTTPRequestHandler):
    """Answers every request from the transcript, one connection per request."""

    server: TranscriptServer
    protocol_version = "HTTP/1.1"

    def _replay(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        seen = Seen(
            method=self.command,
            path=url.path,
            query={k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=json.loads(raw) if raw else None,
        )
        status, body = self.server.replay.answer(seen)
        if isinstance(body, str):
            data, content_type = body.encode(), "text/plain; charset=utf-8"
        else:
            data, content_type = json.dumps(body).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")  # so a stopped server really is gone
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def do_GET(self) -> None:
        self._replay()

    def do_PATCH(self) -> None:
        self._replay()

    def do_DELETE(self) -> None:
        self._replay()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class TranscriptServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, replay: Replay) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.replay = replay

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@dataclass
class Api:
    """The running replay server and a kubeconfig file pointing at it."""

    server: TranscriptServer
    replay: Replay
    kubeconfig: Path
    thread: threading.Thread

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    replay = Replay()
    server = TranscriptServer(replay)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="k8s-transcript",
        daemon=True,
    )
    thread.start()
    kubeconfig = tmp_path / "kubeconfig.json"  # JSON is YAML: the client reads it as such
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "replay", "cluster": {"server": server.url}}],
                "users": [{"name": "modelyard", "user": {"token": TOKEN}}],
                "contexts": [
                    {
                        "name": "replay",
                        "context": {"cluster": "replay", "user": "modelyard", "namespace": "ml"},
                    }
                ],
                "current-context": "replay",
            }
        )
    )
    running = Api(server, replay, kubeconfig, thread)
    try:
        yield running
    finally:
        running.stop()


def make_deployment() -> Deployment:
    revisions = tuple(
        Revision(n, "iris", n, f"models:/iris/{n}", RuntimeSettings(), "ready", "", w, 0.0, 0)
        for n, w in ((1, 0), (2, 100))
    )
    return Deployment(
        7,
        "default",
        "iris",
        ScalingConfig(min_replicas=1, max_replicas=4),
        "active",
        2,
        1,
        None,
        revisions,
        3,
        "u",
        0,
        0,
        BackendSpec(kind="kubernetes", namespace="ml", autoscaler="hpa"),
    )


def render(deployment: Deployment, targets: Sequence[RevisionTarget]) -> list[dict[str, Any]]:
    """Small stand-ins for the renderer's objects, labelled as it labels them: the shared
    Service, then a Deployment and a HorizontalPodAutoscaler per revision."""
    base = {
        "app.kubernetes.io/name": deployment.name,
        "app.kubernetes.io/managed-by": "modelyard",
    }
    ns = deployment.backend.namespace
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": deployment.name, "namespace": ns, "labels": base},
            "spec": {
                "selector": {"app.kubernetes.io/name": deployment.name},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        }
    ]
    for t in targets:
        n = t.revision.number
        labels = {**base, "modelyard.dev/revision": str(n)}
        name = f"{deployment.name}-r{n}"
        objects.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "spec": {
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {"name": "model", "image": "ghcr.io/modelyard/runtime:0.1.0"}
                            ]
                        },
                    },
                },
            }
        )
        objects.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "minReplicas": t.min_replicas,
                    "maxReplicas": t.max_replicas,
                },
            }
        )
    return objects


def targets(deployment: Deployment, *numbers: int) -> list[RevisionTarget]:
    out = []
    for n in numbers:
        revision = deployment.revision(n)
        assert revision is not None
        out.append(RevisionTarget(revision, weight=revision.weight, min_replicas=1, max_replicas=4))
    return out


def step(api: Api, name: str) -> int:
    """Queue one transcript file; returns where its requests start in ``seen``."""
    api.replay.load(name)
    return len(api.replay.seen)


def finished(api: Api) -> None:
    assert api.replay.mismatches == []
    assert api.replay.entries == [], "requests the transcript expects were not sent"


def test_a_rollout_from_revision_1_to_2_and_removal(api: Api) -> None:
    dep = make_deployment()
    backend = KubernetesBackend(kubeconfig=api.kubeconfig, renderer=render)
    try:
        # Both revisions run during the rollout: one SSA PATCH per object, then the sweep
        # of other revisions (nothing to delete; Services have no deletecollection here).
        start = step(api, "01_apply_two_revisions.json")
        backend.apply(dep, targets(dep, 1, 2))
        finished(api)
        sent = api.replay.seen[start:]
        patches = [s for s in sent if s.method == "PATCH"]
        assert [p.body for p in patches] == render(dep, targets(dep, 1, 2))
        for p in patches:
            assert p.headers["content-type"] == "application/apply-patch+yaml"
            assert p.query == {"fieldManager": "modelyard", "force": "true"}
        assert all(s.headers["authorization"] == f"Bearer {TOKEN}" for s in sent)
        assert all(s.headers["accept"] == "application/json" for s in sent)

        step(api, "02_observe_during_rollout.json")
        observed = backend.observe(dep)
        finished(api)
        assert not observed.rolled_out
        assert observed.endpoint == "http://iris.ml.svc.cluster.local/"
        assert observed.message == (
            'Waiting for deployment "iris-r2" rollout to finish: 1 of 2 updated replicas '
            "are available..."
        )
        by_id = {r.id: r for r in observed.replicas}
        assert [(r.revision, r.state) for r in observed.replicas] == [
            (1, "ready"),
            (1, "ready"),
            (2, "ready"),
            (2, "failed"),
        ]
        crashed = by_id["iris-r2-5f7b9c6d4-x2m8q"]
        assert crashed == ObservedReplica(
            id="iris-r2-5f7b9c6d4-x2m8q",
            revision=2,
            state="failed",
            node="node-b",
            reason=(
                "CrashLoopBackOff: back-off 20s restarting failed container=model "
                "pod=iris-r2-5f7b9c6d4-x2m8q_ml(4f1c2d1e-8b7a-4c5e-9d3f-2a6b8c0e1f3a) "
                "(container model; last exit: OOMKilled (exit code 137))"
            ),
            started_at_ms=1714564920000,
            ready_at_ms=None,
        )

        # Revision 1 retired: its Deployment and autoscaler go by label selector; the
        # Service (no revision label) stays, Services are listed instead of collection-
        # deleted (the 405 was remembered).
        start = step(api, "03_apply_retire_revision_1.json")
        backend.apply(dep, targets(dep, 2))
        finished(api)
        deletes = [s for s in api.replay.seen[start:] if s.method == "DELETE"]
        selector = (
            "app.kubernetes.io/name=iris,app.kubernetes.io/managed-by=modelyard,"
            "modelyard.dev/revision,modelyard.dev/revision notin (2)"
        )
        assert [(d.path, d.query) for d in deletes] == [
            (
                "/apis/apps/v1/namespaces/ml/deployments",
                {"labelSelector": selector, "propagationPolicy": "Background"},
            ),
            (
                "/apis/autoscaling/v2/namespaces/ml/horizontalpodautoscalers",
                {"labelSelector": selector, "propagationPolicy": "Background"},
            ),
        ]

        step(api, "04_observe_old_pods_draining.json")
        draining = backend.observe(dep)
        finished(api)
        assert not draining.rolled_out
        assert draining.message == "2 replica(s) of old revisions still running"
        assert {(r.revision, r.state) for r in draining.replicas} == {
            (1, "draining"),
            (2, "ready"),
        }

        step(api, "05_observe_rolled_out.json")
        done = backend.observe(dep)
        finished(api)
        assert done.rolled_out
        assert done.message == "rolled out: 2 replica(s) ready across 1 revision(s)"
        assert [(r.id, r.state, r.node) for r in done.replicas] == [
            ("iris-r2-5f7b9c6d4-7kq2w", "ready", "node-a"),
            ("iris-r2-5f7b9c6d4-x2m8q", "ready", "node-b"),
        ]

        # remove: every kind by the deployment's labels; CRDs not installed answer 404.
        start = step(api, "06_remove.json")
        backend.remove(dep)
        finished(api)
        removed = api.replay.seen[start:]
        assert [(s.method, s.path) for s in removed][-1] == (
            "DELETE",
            "/apis/serving.knative.dev/v1/namespaces/ml/services",
        )
    finally:
        backend.close()


def bad_port(deployment: Deployment, targets: Sequence[RevisionTarget]) -> list[dict[str, Any]]:
    """The stand-in objects with a Service port no API server accepts."""
    objects = render(deployment, targets)
    objects[0]["spec"]["ports"][0]["targetPort"] = 80800
    return objects


def test_invalid_and_forbidden_objects_become_clear_errors(api: Api) -> None:
    dep = make_deployment()
    backend = KubernetesBackend(kubeconfig=api.kubeconfig, renderer=bad_port)
    try:
        step(api, "07_errors.json")
        with pytest.raises(InvalidInput) as invalid:
            backend.apply(dep, targets(dep, 2))
        assert str(invalid.value) == (
            "Kubernetes rejected Service ml/iris as invalid: spec.ports[0].targetPort: "
            "Invalid value: 80800: must be between 1 and 65535, inclusive"
        )
        with pytest.raises(PermissionDenied) as denied:
            backend.apply(dep, targets(dep, 2))
        assert str(denied.value) == (
            'Kubernetes refused Service ml/iris (403 Forbidden): services "iris" is '
            'forbidden: User "system:serviceaccount:modelyard:modelyard-server" cannot patch '
            'resource "services" in API group "" in the namespace "ml"'
        )
        with pytest.raises(PermissionDenied, match=r"\(401 Unauthorized\): Unauthorized"):
            backend.observe(dep)
        finished(api)
    finally:
        backend.close()


def test_an_api_server_that_went_away_is_an_oserror(api: Api) -> None:
    dep = make_deployment()
    backend = KubernetesBackend(kubeconfig=api.kubeconfig, renderer=render, request_timeout_s=5.0)
    url = api.server.url
    api.stop()
    try:
        with pytest.raises(OSError, match=f"cannot reach the Kubernetes API at {url}"):
            backend.observe(dep)
        with pytest.raises(OSError, match=f"cannot reach the Kubernetes API at {url}"):
            backend.apply(dep, targets(dep, 2))
    finally:
        backend.close()
    assert api.replay.seen == []
