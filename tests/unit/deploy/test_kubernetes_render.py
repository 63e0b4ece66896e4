"""Kubernetes manifests: golden files, strict schema validation, invariants, bad input.

No cluster is reachable here, so every rendered object is checked against the real
schemas instead: built-in kinds with ``kubernetes-validate`` in strict mode (unknown
fields are errors) for several Kubernetes versions, and the custom resources (KEDA
ScaledObject, prometheus-operator ServiceMonitor, Knative Service) with ``jsonschema``
against their CRDs' OpenAPI schemas vendored in ``tests/data/crds`` and made strict the
same way (``additionalProperties: false`` wherever the CRD lists properties and does not
say ``x-kubernetes-preserve-unknown-fields``).

``MODELYARD_UPDATE_GOLDEN=1`` rewrites the golden files instead of comparing.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import jsonschema
import kubernetes_validate
import pytest
import typer
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.cli.main import app
from modelyard.core.backends import Autoscaler, BackendSpec, parse_cpu, parse_memory_mb
from modelyard.core.deployments import Deployment, Revision, RuntimeSettings, ScalingConfig
from modelyard.core.errors import InvalidInput
from modelyard.deploy import kubernetes_render as kr
from modelyard.deploy._backend import RevisionTarget

GOLDEN = Path(__file__).parent / "golden"
CRDS = Path(__file__).parents[2] / "data" / "crds"
DOCKERFILE = Path(__file__).parents[3] / "docker" / "runtime" / "Dockerfile"
K8S_VERSIONS = ("1.29.0", "1.33.0")
BUILTIN = {
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
}
CUSTOM = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_servicemonitors.yaml",
    ("serving.knative.dev/v1", "Service"): "serving.knative.dev_services.yaml",
}
DNS_1123_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
SECRET_SENTINEL = "s3cr3t-token-value-never-rendered"


# --- building deployments ------------------------------------------------------------------


def revision(number: int, version: int | None = None, **settings: Any) -> Revision:
    v = number if version is None else version
    return Revision(
        number,
        "iris",
        v,
        "models:/iris@champion",  # an alias: the pods must pin the version instead
        RuntimeSettings(**settings),
        "ready",
        "",
        0,
        0.0,
        0,
    )


def deployment(
    name: str = "iris",
    *,
    config: ScalingConfig | None = None,
    backend: BackendSpec | None = None,
    revisions: Sequence[Revision] = (),
    project: str = "default",
) -> Deployment:
    revs = tuple(revisions) or (revision(1),)
    return Deployment(
        7,
        project,
        name,
        config or ScalingConfig(min_replicas=1, max_replicas=4),
        "active",
        revs[0].number,
        None,
        None,
        revs,
        3,
        "alice",
        0,
        0,
        backend or BackendSpec(kind="kubernetes"),
    )


def target(
    rev: Revision, weight: int, low: int, high: int, replicas: int | None = None
) -> RevisionTarget:
    return RevisionTarget(rev, weight, low, high, replicas)


# --- the four representative deployments ---------------------------------------------------


def case_hpa() -> list[kr.Manifest]:
    rev = revision(1, cpu=0.5, memory_mb=1024)
    dep = deployment(
        config=ScalingConfig(min_replicas=1, max_replicas=4),
        backend=BackendSpec(kind="kubernetes", namespace="ml", autoscaler="hpa"),
        revisions=[rev],
    )
    return kr.render_manifests(dep, [target(rev, 100, 1, 4)])


def case_keda_scale_to_zero() -> list[kr.Manifest]:
    rev = revision(2, version=5, cpu=1.0, memory_mb=512, max_batch_size=32, max_latency_ms=2.5)
    dep = deployment(
        "fraud",
        config=ScalingConfig(min_replicas=0, max_replicas=6, idle_grace_s=120.0),
        backend=BackendSpec(kind="kubernetes"),  # min 0 picks keda, namespace default
        revisions=[rev],
        project="payments",
    )
    return kr.render_manifests(dep, [target(rev, 100, 0, 6)])


def case_knative_canary() -> list[kr.Manifest]:
    stable, canary = revision(3), revision(4, version=9, batching=False)
    dep = deployment(
        "reviews",
        config=ScalingConfig(min_replicas=1, max_replicas=5, target_concurrency=8.0),
        backend=BackendSpec(kind="kubernetes", namespace="serving", autoscaler="knative"),
        revisions=[stable, canary],
    )
    targets = [target(canary, 10, 1, 5), target(stable, 90, 1, 5)]
    return kr.render_manifests(dep, targets, server_url="https://modelyard.example.com")


def case_gpu() -> list[kr.Manifest]:
    old, new = revision(1, cpu=4.0, memory_mb=16384, gpu=1.0), revision(2, cpu=8, gpu=2.0)
    dep = deployment(
        "video",
        config=ScalingConfig(min_replicas=1, max_replicas=2, target_utilization=0.6),
        backend=BackendSpec(
            kind="kubernetes",
            namespace="vision",
            autoscaler="hpa",
            image="registry.example.com:5000/ml/runtime-gpu:0.1.0",
        ),
        revisions=[old, new],
    )
    # A rolling update in progress: modelyard holds the new revision at one pod.
    targets = [target(old, 100, 1, 2), target(new, 0, 1, 2, replicas=1)]
    return kr.render_manifests(dep, targets, server_url="http://modelyard.ml.svc:5000")


CASES = {
    "hpa": case_hpa,
    "keda-scale-to-zero": case_keda_scale_to_zero,
    "knative-canary": case_knative_canary,
    "gpu": case_gpu,
}


# --- validation helpers --------------------------------------------------------------------


def strict(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` where the CRD lists properties and
    keeps no unknown fields (what the API server would prune silently, we reject)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (v if k == "enum" else strict(v)) for k, v in schema.items()}
    if "properties" in out:
        out["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in out and not out.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
    return out


@cache
def crd_validator(file: str) -> jsonschema.Draft7Validator:
    doc = yaml.safe_load((CRDS / file).read_text())
    return jsonschema.Draft7Validator(strict(doc["openAPIV3Schema"]))


def validate(manifest: kr.Manifest, versions: Sequence[str] = K8S_VERSIONS) -> None:
    """Raise unless ``manifest`` is valid for its kind (strictly)."""
    key = (manifest["apiVersion"], manifest["kind"])
    if key in CUSTOM:
        crd_validator(CUSTOM[key]).validate(manifest)
        return
    assert key in BUILTIN, f"unexpected kind {key}"
    for version in versions:
        kubernetes_validate.validate(manifest, version, strict=True)


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def pod_templates(manifests: Sequence[kr.Manifest]) -> list[dict[str, Any]]:
    """The pod templates (metadata + spec) of every workload object."""
    out = []
    for m in manifests:
        if m["kind"] == "Deployment" or m["apiVersion"].startswith("serving.knative.dev/"):
            out.append(m["spec"]["template"])
    return out


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@cache
def serve_command() -> Any:
    """The real ``serve`` command object (Typer's bundled Click) of the ``modelyard`` CLI."""
    return typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]


def parse_serve(argv: Sequence[str]) -> dict[str, Any]:
    """Parse ``modelyard serve`` arguments with the real command (without running it)."""
    assert list(argv[:2]) == ["modelyard", "serve"], argv
    ctx = serve_command().make_context("serve", list(argv[2:]))
    return dict(ctx.params)


def golden_text(manifests: Sequence[kr.Manifest]) -> str:
    files = kr.to_yaml_files(manifests)
    return "".join(f"---\n# {name}\n{text}" for name, text in files.items())


# --- golden files --------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    text = golden_text(CASES[case]())
    path = GOLDEN / f"{case}.yaml"
    if os.environ.get("MODELYARD_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with MODELYARD_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{case}: rendered manifests differ from {path.name}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_cases_validate_strictly(case: str) -> None:
    manifests = CASES[case]()
    latest = kubernetes_validate.latest_version()
    for manifest in manifests:
        validate(manifest, (*K8S_VERSIONS, latest))


@pytest.mark.parametrize(
    ("case", "index", "path", "typo"),
    [
        ("hpa", 0, ("spec", "template", "spec", "containers", 0), "readnessProbe"),
        ("hpa", 1, ("spec",), "minReplica"),
        ("keda-scale-to-zero", 1, ("spec", "triggers", 0), "metricTyp"),
        ("knative-canary", 0, ("spec", "template", "spec", "containers", 0), "lifecycle"),
        ("knative-canary", 0, ("spec", "traffic", 0), "weight"),
        ("hpa", -1, ("spec", "endpoints", 0), "prot"),
    ],
)
def test_strict_validation_rejects_a_misspelled_field(
    case: str, index: int, path: tuple[str | int, ...], typo: str
) -> None:
    """The checks above can fail: an unknown field is an error, built-in kind or CRD."""
    manifest = CASES[case]()[index]
    node: Any = manifest
    for key in path:
        node = node[key]
    node[typo] = {}
    with pytest.raises(jsonschema.ValidationError, match=typo):
        validate(manifest)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_cases_round_trip_through_yaml(case: str) -> None:
    manifests = CASES[case]()
    files = kr.to_yaml_files(manifests)
    assert list(files) == [f"{m['kind'].lower()}-{m['metadata']['name']}.yaml" for m in manifests]
    assert [yaml.safe_load(text) for text in files.values()] == manifests
    assert kr.to_yaml_files(CASES[case]()) == files  # stable: same input, same bytes


def test_kinds_per_autoscaler() -> None:
    def kinds(manifests: Sequence[kr.Manifest]) -> list[str]:
        return [f"{m['kind']}/{m['metadata']['name']}" for m in manifests]

    assert kinds(case_hpa()) == [
        "Deployment/iris-r1",
        "HorizontalPodAutoscaler/iris-r1",
        "Service/iris",
        "PodDisruptionBudget/iris",
        "NetworkPolicy/iris",
        "ServiceMonitor/iris",
    ]
    assert kinds(case_keda_scale_to_zero()) == [
        "Deployment/fraud-r2",
        "ScaledObject/fraud-r2",
        "Service/fraud",
        "PodDisruptionBudget/fraud",
        "NetworkPolicy/fraud",
        "ServiceMonitor/fraud",
    ]
    assert kinds(case_knative_canary()) == [
        "Service/reviews",
        "Service/reviews-metrics",
        "PodDisruptionBudget/reviews",
        "NetworkPolicy/reviews",
        "ServiceMonitor/reviews",
    ]
    # r2 has a fixed replica count: no autoscaler fights modelyard over it.
    assert kinds(case_gpu()) == [
        "Deployment/video-r1",
        "HorizontalPodAutoscaler/video-r1",
        "Deployment/video-r2",
        "Service/video",
        "PodDisruptionBudget/video",
        "NetworkPolicy/video",
        "ServiceMonitor/video",
    ]


def test_pod_runs_the_pinned_model_with_the_revisions_settings() -> None:
    dep, hpa = case_hpa()[:2]
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    params = parse_serve([*container["command"], *container["args"]])
    assert params["model"] == "models:/iris/1"  # the version, not the alias
    assert (params["host"], params["allow_remote"], params["port"]) == ("0.0.0.0", True, 8080)
    assert (params["max_batch_size"], params["max_latency_ms"], params["batching"]) == (
        64,
        5.0,
        True,
    )
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "500m", "memory": "1Gi"},
    }
    assert "replicas" not in dep["spec"]  # the HPA owns the count
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["maxReplicas"] == 4
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 10001
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {kr.HOME, "/tmp"} <= mounts
    env = {e["name"]: e for e in container["env"]}
    assert env["MODELYARD_HOME"]["value"] == kr.HOME
    assert env["MODELYARD_PROJECT"]["value"] == "default"
    assert env["MODELYARD_TRACKING_URI"]["valueFrom"]["configMapKeyRef"] == {
        "name": "modelyard",
        "key": "tracking-uri",
    }
    assert env["MODELYARD_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "modelyard-token",
        "key": "token",
    }


def test_the_runtime_serves_the_routes_the_manifests_use() -> None:
    source = (Path(kr.__file__).parents[1] / "serving" / "_app.py").read_text()
    for path in (kr.READY_PATH, kr.LIVE_PATH, kr.METRICS_PATH):
        assert f'"{path}"' in source, f"the runtime has no {path} route"
    metrics = (Path(kr.__file__).parents[1] / "serving" / "_metrics.py").read_text()
    assert f'"{kr.IN_FLIGHT_METRIC}"' in metrics or kr.IN_FLIGHT_METRIC in metrics


def test_keda_scales_to_zero_on_in_flight_requests() -> None:
    manifests = case_keda_scale_to_zero()
    scaled = next(m for m in manifests if m["kind"] == "ScaledObject")
    spec = scaled["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 6)
    assert spec["cooldownPeriod"] == 120
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["threshold"] == "2.8"  # 4 in flight x 0.7 utilization
    assert trigger["metadata"]["query"] == (
        'sum(modelyard_serving_in_flight_requests{namespace="default",'
        'app_kubernetes_io_name="fraud",modelyard_dev_revision="2"}) or vector(0)'
    )
    monitor = next(m for m in manifests if m["kind"] == "ServiceMonitor")
    # The labels the query selects by are the ones the ServiceMonitor copies from pods.
    assert monitor["spec"]["podTargetLabels"] == [kr.LABEL_NAME, kr.LABEL_REVISION]
    deployment_ = manifests[0]
    args = deployment_["spec"]["template"]["spec"]["containers"][0]["args"]
    assert parse_serve(["modelyard", "serve", *args])["max_latency_ms"] == 2.5
    env = {e["name"]: e for e in deployment_["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELYARD_PROJECT"]["value"] == "payments"


def test_knative_carries_exact_percentages() -> None:
    ksvc, metrics = case_knative_canary()[:2]
    template = ksvc["spec"]["template"]
    assert template["metadata"]["name"] == "reviews-r4"  # the newest revision
    assert ksvc["spec"]["traffic"] == [
        {"revisionName": "reviews-r3", "latestRevision": False, "percent": 90},
        {"revisionName": "reviews-r4", "latestRevision": False, "percent": 10},
    ]
    notes = template["metadata"]["annotations"]
    assert notes["autoscaling.knative.dev/min-scale"] == "1"
    assert notes["autoscaling.knative.dev/max-scale"] == "5"
    assert notes["autoscaling.knative.dev/target"] == "8"
    (container,) = template["spec"]["containers"]
    assert container["ports"] == [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}]
    assert "lifecycle" not in container  # Knative refuses lifecycle hooks
    assert "port" not in container["readinessProbe"]["httpGet"]  # Knative probes its port
    assert "securityContext" not in template["spec"]  # pod-level needs a Knative flag
    assert parse_serve([*container["command"], *container["args"]])["batching"] is False
    env = {e["name"]: e for e in container["env"]}
    assert env["MODELYARD_TRACKING_URI"] == {
        "name": "MODELYARD_TRACKING_URI",
        "value": "https://modelyard.example.com",
    }
    assert metrics["spec"]["clusterIP"] == "None"


def test_knative_with_nothing_ready_follows_the_latest_revision() -> None:
    rev = revision(1)
    dep = deployment(backend=BackendSpec(kind="kubernetes", autoscaler="knative"))
    (ksvc, *_) = kr.render_manifests(dep, [target(rev, 0, 1, 4)])
    assert ksvc["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]


def test_knative_template_depends_only_on_the_revision_and_config() -> None:
    """Knative refuses a changed template under the same name: weights must not leak in."""
    stable, canary = revision(3), revision(4)
    dep = deployment(backend=BackendSpec(kind="kubernetes", autoscaler="knative"))
    a = kr.render_manifests(dep, [target(stable, 90, 1, 4), target(canary, 10, 1, 4)])
    b = kr.render_manifests(dep, [target(stable, 50, 1, 4), target(canary, 50, 1, 4)])
    assert a[0]["spec"]["template"] == b[0]["spec"]["template"]
    assert a[0]["spec"]["traffic"] != b[0]["spec"]["traffic"]


def test_gpu_revisions_ask_for_whole_gpus_and_tolerate_gpu_nodes() -> None:
    manifests = case_gpu()
    old, new = (m for m in manifests if m["kind"] == "Deployment")
    for dep, gpus in ((old, "1"), (new, "2")):
        pod = dep["spec"]["template"]["spec"]
        limits = pod["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == gpus
        assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["requests"]
        assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert new["spec"]["replicas"] == 1
    assert old["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.example.com:5000/ml/runtime-gpu:0.1.0"
    )
    assert old["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "4",
        "memory": "16Gi",
    }
    hpa = next(m for m in manifests if m["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60


def test_spec_defaults_to_the_deployments_backend_and_a_given_spec_wins() -> None:
    rev = revision(1)
    dep = deployment(backend=BackendSpec(kind="kubernetes", namespace="team-a"))
    assert kr.render_manifests(dep, [target(rev, 100, 1, 4)])[0]["metadata"]["namespace"] == (
        "team-a"
    )
    other = BackendSpec(kind="kubernetes", namespace="team-b", autoscaler="keda")
    manifests = kr.render_manifests(dep, [target(rev, 100, 1, 4)], other)
    assert {m["metadata"]["namespace"] for m in manifests} == {"team-b"}
    assert "ScaledObject" in {m["kind"] for m in manifests}


def test_a_single_pod_gets_no_disruption_budget() -> None:
    rev = revision(1)
    dep = deployment(config=ScalingConfig(min_replicas=1, max_replicas=1))
    kinds = {m["kind"] for m in kr.render_manifests(dep, [target(rev, 100, 1, 1)])}
    assert "PodDisruptionBudget" not in kinds


def test_hpa_keeps_one_pod_for_a_revision_whose_floor_is_zero() -> None:
    old, new = revision(1), revision(2)
    dep = deployment(backend=BackendSpec(kind="kubernetes", autoscaler="hpa"))
    manifests = kr.render_manifests(dep, [target(old, 100, 1, 4), target(new, 0, 0, 4)])
    floors = [m["spec"]["minReplicas"] for m in manifests if m["kind"] == "HorizontalPodAutoscaler"]
    assert floors == [1, 1]


def test_to_yaml_files_refuses_two_objects_in_one_file() -> None:
    manifests = case_hpa()
    with pytest.raises(InvalidInput, match=r"deployment-iris-r1\.yaml"):
        kr.to_yaml_files([manifests[0], manifests[0]])


# --- bad input -----------------------------------------------------------------------------


def test_hpa_cannot_scale_to_zero() -> None:
    dep = deployment(
        config=ScalingConfig(min_replicas=0, max_replicas=3),
        backend=BackendSpec(kind="kubernetes", autoscaler="hpa"),
    )
    with pytest.raises(InvalidInput, match="HorizontalPodAutoscaler cannot scale to zero"):
        kr.render_manifests(dep, [target(revision(1), 100, 0, 3)])


def test_an_image_that_is_not_a_reference_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"image 'Not An Image!' is not an image reference"):
        BackendSpec(kind="kubernetes", image="Not An Image!")
    with pytest.raises(InvalidInput, match="image"):
        replace(BackendSpec(kind="kubernetes"), image="ghcr.io/x/y:tag with space")


def test_a_name_too_long_once_suffixed_is_refused_naming_it() -> None:
    name = "a" * 60
    rev = revision(10)
    dep = deployment(name, revisions=[rev])
    with pytest.raises(InvalidInput) as err:
        kr.render_manifests(dep, [target(rev, 100, 1, 4)])
    message = str(err.value)
    assert f"'{name}-r10'" in message
    assert "64 characters" in message
    assert "at most 59" in message
    # The same name fits with revision 1 (62 characters).
    assert kr.render_manifests(dep, [target(revision(1), 100, 1, 4)])


def test_knative_needs_room_for_the_metrics_service() -> None:
    name = "k" * 57
    dep = deployment(name, backend=BackendSpec(kind="kubernetes", autoscaler="knative"))
    with pytest.raises(InvalidInput, match=f"'{name}-metrics'"):
        kr.render_manifests(dep, [target(revision(1), 100, 1, 4)])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "9lives"}, "must start with a letter"),
        ({"backend": BackendSpec()}, "has the local backend"),
        ({"targets": []}, "nothing to render"),
        ({"targets": [(1, 60, 1, 4, None), (2, 30, 1, 4, None)]}, "sum to 100"),
        ({"targets": [(1, 100, 1, 4, None), (1, 0, 1, 4, None)]}, "repeat a revision"),
        ({"targets": [(1, 100, 3, 2, None)]}, "0 <= min <= max"),
        ({"targets": [(1, 100, 0, 0, None)]}, "max >= 1"),
        ({"targets": [(1, 100, 1, 4, -1)]}, "replicas must be >= 0"),
        ({"gpu": 0.5}, "gpu 0.5 is fractional"),
        ({"gpu": math.inf}, "gpu must be a finite number"),
        (
            {"config": ScalingConfig(min_replicas=1, request_timeout_s=math.inf)},
            "request_timeout_s",
        ),
        ({"server_url": "modelyard.example.com"}, "server_url 'modelyard.example.com'"),
        ({"prometheus_url": ""}, "prometheus_url ''"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(change: dict[str, Any], message: str) -> None:
    rev = revision(1, gpu=change.get("gpu", 0.0))
    dep = deployment(
        change.get("name", "iris"),
        backend=change.get("backend"),
        config=change.get("config"),
        revisions=[rev],
    )
    targets = [
        target(revision(n), w, low, high, replicas)
        for n, w, low, high, replicas in change.get("targets", [(1, 100, 1, 4, None)])
    ]
    if "gpu" in change:
        targets = [target(rev, 100, 1, 4)]
    kwargs = {k: change[k] for k in ("server_url", "prometheus_url") if k in change}
    with pytest.raises(InvalidInput, match=re.escape(message)):
        kr.render_manifests(dep, targets, **kwargs)


def test_knative_refuses_a_fixed_replica_count() -> None:
    dep = deployment(backend=BackendSpec(kind="kubernetes", autoscaler="knative"))
    with pytest.raises(InvalidInput, match="Knative scales revisions itself"):
        kr.render_manifests(dep, [target(revision(1), 100, 1, 4, replicas=2)])


# --- properties over options ---------------------------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Deployment, list[RevisionTarget], str]:
    autoscaler: Autoscaler = draw(st.sampled_from(["hpa", "keda", "knative"]))
    low = draw(st.integers(0 if autoscaler != "hpa" else 1, 3))
    high = draw(st.integers(max(low, 1), 8))
    count = draw(st.integers(1, 3))
    numbers = list(
        itertools.accumulate(draw(st.lists(st.integers(1, 40), min_size=count, max_size=count)))
    )
    revisions = [
        revision(
            n,
            cpu=draw(st.sampled_from([0.05, 0.25, 0.5, 1.0, 1.5, 2.0, 7.3, 16.0])),
            memory_mb=draw(st.integers(1, 65536)),
            gpu=float(draw(st.integers(0, 2))),
            max_batch_size=draw(st.integers(1, 512)),
            max_latency_ms=draw(st.sampled_from([0.0, 1.0, 2.5, 5.0, 50.0])),
            batching=draw(st.booleans()),
        )
        for n in numbers
    ]
    if draw(st.booleans()):
        weights = [0] * count
    else:
        cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=count - 1, max_size=count - 1)))
        bounds = [0, *cuts, 100]
        weights = [b - a for a, b in itertools.pairwise(bounds)]
    targets = []
    for rev, weight in zip(revisions, weights, strict=True):
        t_low = draw(st.integers(1 if autoscaler == "hpa" else 0, low)) if low else low
        fixed = None
        if autoscaler != "knative" and draw(st.booleans()):
            fixed = draw(st.integers(0, high))
        targets.append(target(rev, weight, t_low, high, fixed))
    longest_suffix = max(len(f"-r{n}") for n in numbers)
    if autoscaler == "knative":
        longest_suffix = max(longest_suffix, len("-metrics"))
    name = draw(st.from_regex(r"\A[a-z](?:[a-z0-9-]{0,70}[a-z0-9])?\Z"))
    name = name[: 63 - longest_suffix].rstrip("-")
    namespace = draw(st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?\Z"))
    image = draw(
        st.sampled_from(
            [
                "",
                "ghcr.io/modelyard/runtime:0.1.0",
                "localhost:5000/runtime",
                "registry.example.com/ml/rt@sha256:" + "a" * 64,
            ]
        )
    )
    dep = deployment(
        name,
        config=ScalingConfig(
            min_replicas=low,
            max_replicas=high,
            target_concurrency=draw(st.sampled_from([0.5, 1.0, 4.0, 10.0])),
            target_utilization=draw(st.sampled_from([0.1, 0.5, 0.7, 1.0])),
            idle_grace_s=draw(st.sampled_from([0.0, 30.0, 90.5, 7200.0])),
            request_timeout_s=draw(st.sampled_from([1.0, 60.0, 900.0])),
        ),
        backend=BackendSpec(
            kind="kubernetes", namespace=namespace, autoscaler=autoscaler, image=image
        ),
        revisions=revisions,
        project=draw(st.sampled_from(["default", "team a", "Ünïcode"])),
    )
    server_url = draw(
        st.sampled_from(["", "https://modelyard.example.com", "http://10.0.0.1:5000"])
    )
    return dep, targets, server_url


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_every_rendering_is_valid_and_consistent(
    scenario: tuple[Deployment, list[RevisionTarget], str],
) -> None:
    dep, targets, server_url = scenario
    with mock.patch.dict(os.environ, {"MODELYARD_TOKEN": SECRET_SENTINEL}):
        manifests = kr.render_manifests(dep, targets, server_url=server_url)
    spec = dep.backend.resolved(dep.config.min_replicas)
    by_number = {t.revision.number: t for t in targets}

    for m in manifests:
        validate(m)
        meta = m["metadata"]
        assert DNS_1123_LABEL.fullmatch(meta["name"]), meta["name"]
        assert len(meta["name"]) <= 63, meta["name"]
        assert meta["namespace"] == spec.namespace
        assert meta["labels"][kr.LABEL_NAME] == dep.name
        assert meta["labels"][kr.LABEL_MANAGED_BY] == "modelyard"
        if kr.LABEL_REVISION in meta["labels"]:
            number = int(meta["labels"][kr.LABEL_REVISION])
            assert meta["name"] == f"{dep.name}-r{number}"
        assert m["kind"] != "Secret"

    # No secret value anywhere: the token only ever by reference.
    text = json.dumps(manifests)
    assert SECRET_SENTINEL not in text
    for node in walk(manifests):
        if isinstance(node, dict) and "TOKEN" in str(node.get("name", "")):
            assert "value" not in node
            assert node["valueFrom"]["secretKeyRef"]["name"] == kr.TOKEN_SECRET

    templates = pod_templates(manifests)
    assert templates
    selectors = [
        m["spec"]["selector"] if m["kind"] == "Service" else m["spec"]["selector"]["matchLabels"]
        for m in manifests
        if m["kind"] in ("Service", "PodDisruptionBudget") and "selector" in m["spec"]
    ]
    selectors += [
        m["spec"]["podSelector"]["matchLabels"] for m in manifests if m["kind"] == "NetworkPolicy"
    ]
    for selector in selectors:
        for template in templates:
            assert matches(selector, template["metadata"]["labels"]), (selector, template)
    monitored = [
        m
        for m in manifests
        if m["kind"] == "Service"
        and m["apiVersion"] == "v1"
        and matches(
            next(x for x in manifests if x["kind"] == "ServiceMonitor")["spec"]["selector"][
                "matchLabels"
            ],
            m["metadata"]["labels"],
        )
    ]
    assert len(monitored) == 1
    assert monitored[0]["spec"]["ports"][0]["name"] == "http"

    workloads = [m for m in manifests if m["kind"] == "Deployment"]
    if spec.autoscaler == "knative":
        assert not workloads
        (ksvc,) = [m for m in manifests if m["apiVersion"] == "serving.knative.dev/v1"]
        newest = max(by_number)
        assert ksvc["spec"]["template"]["metadata"]["name"] == f"{dep.name}-r{newest}"
        traffic = ksvc["spec"]["traffic"]
        assert sum(t["percent"] for t in traffic) == 100
        if any(t.weight for t in targets):
            assert {t["revisionName"]: t["percent"] for t in traffic} == {
                f"{dep.name}-r{n}": t.weight for n, t in by_number.items()
            }
        checked = [(by_number[newest].revision, ksvc["spec"]["template"]["spec"])]
    else:
        assert sorted(int(w["metadata"]["labels"][kr.LABEL_REVISION]) for w in workloads) == sorted(
            by_number
        )
        checked = []
        scalers = {
            m["metadata"]["name"]
            for m in manifests
            if m["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
        }
        for w in workloads:
            t = by_number[int(w["metadata"]["labels"][kr.LABEL_REVISION])]
            assert matches(
                w["spec"]["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"]
            )
            assert w["spec"].get("replicas") == t.replicas
            assert (w["metadata"]["name"] in scalers) == (t.replicas is None)
            checked.append((t.revision, w["spec"]["template"]["spec"]))
    for rev, pod in checked:
        (container,) = pod["containers"]
        resources = container["resources"]
        s = rev.settings
        for part in ("requests", "limits"):
            assert parse_cpu(resources[part]["cpu"]) == math.ceil(round(s.cpu * 1000, 6)) / 1000
            assert parse_memory_mb(resources[part]["memory"]) == s.memory_mb
        assert resources["limits"].get("nvidia.com/gpu") == (str(int(s.gpu)) if s.gpu else None)
        assert container["image"] == spec.image
        assert container["securityContext"]["runAsUser"] == kr.RUN_AS
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        params = parse_serve([*container["command"], *container["args"]])
        assert params["model"] == f"models:/{rev.model_name}/{rev.model_version}"
        assert (params["max_batch_size"], params["batching"]) == (s.max_batch_size, s.batching)
        assert params["max_latency_ms"] == s.max_latency_ms
        assert params["port"] == kr.CONTAINER_PORT


# --- the image recipe ----------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of the Dockerfile, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        instruction, _, rest = full.partition(" ")
        out.append((instruction.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def test_dockerfile_agrees_with_the_rendered_pods() -> None:
    stage = final_stage()
    ops: dict[str, list[str]] = {}
    for op, rest in stage:
        ops.setdefault(op, []).append(rest)
    assert ops["FROM"] == ["python:3.11-slim"]
    assert ops["USER"] == [f"{kr.RUN_AS}:{kr.RUN_AS}"]
    assert ops["EXPOSE"] == [str(kr.CONTAINER_PORT)]
    entrypoint = json.loads(ops["ENTRYPOINT"][0])
    assert entrypoint == list(kr.SERVE_COMMAND)
    env = dict(shlex.split(item)[0].split("=", 1) for item in _env_items(ops["ENV"]))
    assert env["MODELYARD_HOME"] == kr.HOME
    assert env["HOME"] == kr.HOME
    assert any("modelyard[onnx]" in run for run in ops["RUN"])
    assert any(f"--uid {kr.RUN_AS}" in run for run in ops["RUN"])
    build_stage = dockerfile_instructions()[: len(dockerfile_instructions()) - len(stage)]
    assert ("FROM", "python:3.11-slim AS build") in build_stage
    assert any(".[onnx]" in rest for op, rest in build_stage if op == "RUN")
    # The rendered pod runs the same command, with the model and batching as arguments.
    (container,) = case_hpa()[0]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == entrypoint
    parse_serve([*entrypoint, *container["args"]])


def _env_items(lines: Sequence[str]) -> list[str]:
    items: list[str] = []
    for line in lines:
        items.extend(shlex.split(line))
    return items


def test_every_flag_the_image_and_pods_use_is_a_real_serve_option() -> None:
    """Against ``modelyard serve --help`` itself, as a user would check."""
    help_text = subprocess.run(
        [sys.executable, "-m", "modelyard", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
        timeout=120,
    ).stdout
    used: set[str] = set()
    for manifests in (case() for case in CASES.values()):
        for template in pod_templates(manifests):
            for container in template["spec"]["containers"]:
                used |= {
                    a for a in (*container["command"], *container["args"]) if a.startswith("--")
                }
    used |= {a for a in kr.SERVE_COMMAND if a.startswith("--")}
    assert {"--host", "--allow-remote", "--port", "--max-batch-size", "--no-batching"} <= used
    for flag in sorted(used):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text), flag
