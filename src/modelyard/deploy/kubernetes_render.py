"""Kubernetes manifests for a deployment: what ``modelyard deploy render`` writes and the
kubernetes backend applies.

:func:`render_manifests` turns a deployment's desired state (its revisions, each with a
traffic weight and replica bounds) into plain Kubernetes objects, as dicts ready for
server-side apply or for YAML files (:func:`to_yaml_files`). It is a pure function: no
I/O and no ``kubernetes`` import, so the CLI, the server route, the kubernetes backend
and the tests all get exactly the same objects, and the tests can check every one against
the Kubernetes and CRD schemas without a cluster.

Per deployment ``<dep>`` in namespace ``<ns>``:

- per revision ``n``: an ``apps/v1 Deployment`` ``<dep>-r<n>`` running the runtime image
  with the same ``modelyard serve`` command a local replica runs (non-root, read-only
  root filesystem, probes on the Open Inference Protocol health routes, resources from
  the revision's settings), and its autoscaler: an ``autoscaling/v2
  HorizontalPodAutoscaler`` (``hpa``: CPU utilization) or a ``keda.sh/v1alpha1
  ScaledObject`` (``keda``: in-flight requests from Prometheus, can scale to zero);
- one ``v1 Service`` ``<dep>`` over every revision's pods;
- with ``knative``, one ``serving.knative.dev/v1 Service`` ``<dep>`` instead of the
  Deployments, Service and autoscalers (its ``traffic`` block splits traffic by exact
  percentages), plus a headless ``<dep>-metrics`` Service for Prometheus;
- a ``policy/v1 PodDisruptionBudget``, a ``networking.k8s.io/v1 NetworkPolicy`` and a
  ``monitoring.coreos.com/v1 ServiceMonitor``.

docs/kubernetes.md explains each object and option.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import yaml

from modelyard.core.backends import BackendSpec, format_cpu, format_memory
from modelyard.core.deployments import Deployment, Revision, ScalingConfig
from modelyard.core.errors import InvalidInput
from modelyard.deploy._backend import RevisionTarget

Manifest = dict[str, Any]

CONTAINER_PORT = 8080
"""The port ``modelyard serve`` binds inside the pod (the image's ``EXPOSE``)."""
SERVICE_PORT = 80
"""The port of the ``<dep>`` Service: ``http://<dep>.<ns>.svc/``."""
PORT_NAME = "http"
RUN_AS = 10001
"""The non-root user and group id the runtime runs as (the image's ``USER``)."""
HOME = "/var/lib/modelyard"
"""``MODELYARD_HOME`` in the pod: an emptyDir (the root filesystem is read-only)."""
# Binding 0.0.0.0 inside the pod is the point: the pod's network namespace is its own,
# and the NetworkPolicy limits who reaches it. ``serve`` refuses non-loopback hosts
# without --allow-remote.
SERVE_COMMAND: tuple[str, ...] = (
    "modelyard",
    "serve",
    "--host",
    "0.0.0.0",  # noqa: S104
    "--allow-remote",
    "--port",
    str(CONTAINER_PORT),
)
"""The container command; the image's ``ENTRYPOINT`` is the same list."""
TOKEN_SECRET = "modelyard-token"  # noqa: S105 - a Secret's name, not a value
"""The Secret (key :data:`TOKEN_KEY`) holding the token the runtime fetches models with."""
TOKEN_KEY = "token"  # noqa: S105 - a key in that Secret
CONFIG_MAP = "modelyard"
"""The ConfigMap (key :data:`TRACKING_URI_KEY`) naming the server, when no URL is given."""
TRACKING_URI_KEY = "tracking-uri"
PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
"""Where KEDA queries in-flight requests (prometheus-operator's default Service)."""
MONITORING_NAMESPACE = "monitoring"
"""The namespace of the Prometheus that scrapes the runtime (allowed by the NetworkPolicy)."""
KNATIVE_NAMESPACES: tuple[str, ...] = ("knative-serving", "kourier-system", "istio-system")
"""Knative's activator and autoscaler, and the ingress gateways of Kourier and Istio."""
# queue-proxy, Knative's sidecar: 8012 HTTP/1, 8013 h2c, 9090 autoscaler metrics, 9091
# request metrics.
_KNATIVE_TRAFFIC_PORTS = (8012, 8013, 9090)
_KNATIVE_METRICS_PORT = 9091

LABEL_NAME = "app.kubernetes.io/name"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_REVISION = "modelyard.dev/revision"
LABEL_METRICS = "modelyard.dev/metrics"
MANAGED_BY = "modelyard"
ANNOTATION_MODEL = "modelyard.dev/model"
ANNOTATION_PROJECT = "modelyard.dev/project"
ANNOTATION_WEIGHT = "modelyard.dev/weight"

READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"
METRICS_PATH = "/metrics"
IN_FLIGHT_METRIC = "modelyard_serving_in_flight_requests"

_MAX_NAME = 63
# Service (and Knative Service) names are RFC 1035 labels: they must start with a letter.
_DNS_1035 = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_URL = re.compile(r"^https?://[^\s/?#]+(?:/[^\s]*)?$")
# Knative's bounds for the autoscaling annotations it validates.
_KNATIVE_WINDOW_S = (6, 3600)
_KNATIVE_TARGET_MIN = 0.01
_KNATIVE_TIMEOUT_S = 600  # max-revision-timeout-seconds, unless the cluster raised it
_PRESTOP_SLEEP_S = 5
_NO_FOLDING = 1 << 16


def render_manifests(
    deployment: Deployment,
    targets: Sequence[RevisionTarget],
    spec: BackendSpec | None = None,
    *,
    server_url: str = "",
    prometheus_url: str = PROMETHEUS_URL,
) -> list[Manifest]:
    """The Kubernetes objects that run ``targets`` for ``deployment``.

    Args:
        deployment: The deployment (name, project, scaling config).
        targets: The revisions to run, with their traffic weights and replica bounds.
        spec: The kubernetes backend spec; ``deployment.backend`` when None. Defaults
            (namespace, autoscaler, image) are filled in by :meth:`BackendSpec.resolved`.
        server_url: The modelyard server the runtime fetches the model from
            (``MODELYARD_TRACKING_URI``); empty: read from the ``modelyard`` ConfigMap's
            ``tracking-uri`` key, so one set of manifests works wherever it is applied.
        prometheus_url: The Prometheus KEDA queries (``keda`` only).

    Returns:
        The objects, per-revision ones first in revision order, then the shared ones.

    Raises:
        InvalidInput: the spec is not for kubernetes; ``hpa`` with ``min_replicas`` 0;
            a name Kubernetes would refuse (too long once suffixed, not starting with a
            letter); no targets, or weights, bounds or settings Kubernetes cannot express
            (a fractional GPU); a ``server_url`` that is not an http(s) URL.
    """
    chosen = deployment.backend if spec is None else spec
    if chosen.kind != "kubernetes":
        raise InvalidInput(
            f"deployment {deployment.name!r} has the {chosen.kind} backend: "
            "give a kubernetes backend spec to render Kubernetes manifests"
        )
    resolved = chosen.resolved(deployment.config.min_replicas)
    ordered = sorted(targets, key=lambda t: t.revision.number)
    _check_targets(deployment, ordered, resolved.autoscaler)
    _check_url("server_url", server_url, required=False)
    _check_url("prometheus_url", prometheus_url, required=True)
    ctx = _Context(deployment, resolved, server_url, prometheus_url)
    out: list[Manifest] = []
    if resolved.autoscaler == "knative":
        out.append(_knative_service(ctx, ordered))
        out.append(_metrics_service(ctx))
    else:
        for target in ordered:
            out.append(_deployment(ctx, target))
            if target.replicas is None:
                if resolved.autoscaler == "hpa":
                    out.append(_hpa(ctx, target))
                else:
                    out.append(_scaled_object(ctx, target))
        out.append(_service(ctx))
    if sum(t.max_replicas for t in ordered) > 1:
        out.append(_pod_disruption_budget(ctx))
    out.append(_network_policy(ctx))
    out.append(_service_monitor(ctx))
    return out


def to_yaml_files(manifests: Sequence[Manifest]) -> dict[str, str]:
    """``<kind>-<name>.yaml`` → YAML text, one object per file, in ``manifests`` order.

    Keys keep the order the objects were built in (``apiVersion``, ``kind``,
    ``metadata``, ``spec``), so the same input always gives byte-identical files.

    Raises:
        InvalidInput: two objects would share a file name.
    """
    files: dict[str, str] = {}
    for manifest in manifests:
        name = f"{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
        if name in files:
            raise InvalidInput(f"two manifests would both be written to {name}")
        # No line folding: a PromQL query or a URL stays on one greppable line.
        files[name] = yaml.safe_dump(
            manifest, sort_keys=False, default_flow_style=False, width=_NO_FOLDING
        )
    return files


def revision_name(deployment: str, number: int) -> str:
    """``<dep>-r<n>``: the Deployment, autoscaler and Knative revision of revision ``n``."""
    return f"{deployment}-r{number}"


def model_uri(revision: Revision) -> str:
    """The pinned ``models:/<name>/<version>`` a revision's pods serve.

    Never the alias the revision was created from: a pod restarted after the alias moved
    must still serve the revision's version.
    """
    return f"models:/{revision.model_name}/{revision.model_version}"


# --- checks ------------------------------------------------------------------------------


def _check_targets(
    deployment: Deployment, targets: Sequence[RevisionTarget], autoscaler: str
) -> None:
    name = deployment.name
    if not targets:
        raise InvalidInput(f"deployment {name!r}: nothing to render, no revision to run")
    if not _DNS_1035.fullmatch(name):
        raise InvalidInput(
            f"deployment name {name!r} cannot be a Kubernetes Service name: it must start "
            "with a letter and have at most 63 lower-case letters, digits and '-'"
        )
    longest = [revision_name(name, t.revision.number) for t in targets]
    if autoscaler == "knative":
        longest.append(f"{name}-metrics")
    for obj in longest:
        if len(obj) > _MAX_NAME:
            suffix = len(obj) - len(name)
            raise InvalidInput(
                f"deployment name {name!r} is too long for Kubernetes: the object name "
                f"{obj!r} has {len(obj)} characters, the limit is {_MAX_NAME}; use a "
                f"deployment name of at most {_MAX_NAME - suffix} characters"
            )
    config = deployment.config
    for field in ("target_concurrency", "idle_grace_s", "stable_window_s", "request_timeout_s"):
        if not math.isfinite(getattr(config, field)):
            raise InvalidInput(f"deployment {name!r}: {field} must be a finite number")
    numbers = [t.revision.number for t in targets]
    if len(set(numbers)) != len(numbers):
        raise InvalidInput(f"deployment {name!r}: revision targets repeat a revision: {numbers}")
    weights = [t.weight for t in targets]
    if any(not 0 <= w <= 100 for w in weights) or sum(weights) not in (0, 100):
        raise InvalidInput(
            f"deployment {name!r}: traffic weights must be 0..100 and sum to 100 "
            f"(or all be 0), got {weights}"
        )
    for t in targets:
        rev = f"deployment {name!r} revision {t.revision.number}"
        if not 0 <= t.min_replicas <= t.max_replicas or t.max_replicas < 1:
            raise InvalidInput(
                f"{rev}: replicas must satisfy 0 <= min <= max and max >= 1, got "
                f"min {t.min_replicas}, max {t.max_replicas}"
            )
        if t.replicas is not None and t.replicas < 0:
            raise InvalidInput(f"{rev}: replicas must be >= 0, got {t.replicas}")
        if t.replicas is not None and autoscaler == "knative":
            raise InvalidInput(
                f"{rev}: Knative scales revisions itself; a fixed replica count would need "
                "a new Knative revision per change: leave replicas to the autoscaler"
            )
        settings = t.revision.settings
        for field in ("cpu", "gpu", "max_latency_ms"):
            if not math.isfinite(getattr(settings, field)):
                raise InvalidInput(f"{rev}: {field} must be a finite number")
        gpu = settings.gpu
        if gpu != int(gpu):
            raise InvalidInput(
                f"{rev}: gpu {gpu} is fractional; Kubernetes schedules whole GPUs "
                "(nvidia.com/gpu): use 0, 1, 2, ..."
            )


def _check_url(field: str, url: str, *, required: bool) -> None:
    if (url or required) and not _URL.fullmatch(url):
        raise InvalidInput(f"{field} {url!r} is not an http(s) URL (https://host[:port])")


# --- building blocks ---------------------------------------------------------------------


class _Context:
    """What every builder needs: the deployment, its resolved spec and the URLs."""

    def __init__(
        self, deployment: Deployment, spec: BackendSpec, server_url: str, prometheus_url: str
    ) -> None:
        self.deployment = deployment
        self.name = deployment.name
        self.namespace = spec.namespace
        self.image = spec.image
        self.autoscaler = spec.autoscaler
        self.config: ScalingConfig = deployment.config
        self.server_url = server_url
        self.prometheus_url = prometheus_url

    @property
    def labels(self) -> dict[str, str]:
        """Labels of every object (and every pod) of the deployment."""
        return {LABEL_NAME: self.name, LABEL_MANAGED_BY: MANAGED_BY}

    def revision_labels(self, number: int) -> dict[str, str]:
        """Labels of one revision's objects and pods."""
        return {**self.labels, LABEL_REVISION: str(number)}

    def metadata(self, name: str, labels: dict[str, str]) -> dict[str, Any]:
        return {"name": name, "namespace": self.namespace, "labels": labels}


def _container(ctx: _Context, revision: Revision, *, knative: bool) -> dict[str, Any]:
    """The runtime container: ``modelyard serve`` for the revision's pinned model."""
    s = revision.settings
    args = [
        model_uri(revision),
        "--max-batch-size",
        str(s.max_batch_size),
        "--max-latency-ms",
        repr(float(s.max_latency_ms)),
        "--batching" if s.batching else "--no-batching",
        "--log-level",
        "info",
    ]
    if ctx.server_url:
        tracking: dict[str, Any] = {"name": "MODELYARD_TRACKING_URI", "value": ctx.server_url}
    else:
        tracking = {
            "name": "MODELYARD_TRACKING_URI",
            "valueFrom": {"configMapKeyRef": {"name": CONFIG_MAP, "key": TRACKING_URI_KEY}},
        }
    # The BLAS pools size themselves to the node's cores, not the pod's CPU limit, and a
    # throttled pod with more threads than cores runs slower: give them the limit.
    threads = str(max(1, math.floor(s.cpu)))
    env: list[dict[str, Any]] = [
        tracking,
        {
            "name": "MODELYARD_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": TOKEN_SECRET, "key": TOKEN_KEY}},
        },
        {"name": "MODELYARD_PROJECT", "value": ctx.deployment.project},
        {"name": "MODELYARD_HOME", "value": HOME},
        {"name": "OMP_NUM_THREADS", "value": threads},
        {"name": "OPENBLAS_NUM_THREADS", "value": threads},
        {"name": "MKL_NUM_THREADS", "value": threads},
    ]
    resources: dict[str, str] = {"cpu": format_cpu(s.cpu), "memory": format_memory(s.memory_mb)}
    limits = dict(resources)
    if s.gpu > 0:
        limits["nvidia.com/gpu"] = str(int(s.gpu))
    # Knative routes probes through its queue-proxy to the one serving port, named
    # http1 (or h2c); a probe naming another port is refused, so it names none.
    port: dict[str, Any] = {} if knative else {"port": PORT_NAME}
    container: dict[str, Any] = {
        "name": "runtime",
        "image": ctx.image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(SERVE_COMMAND),
        "args": args,
        "ports": [
            {
                "name": "http1" if knative else PORT_NAME,
                "containerPort": CONTAINER_PORT,
                "protocol": "TCP",
            }
        ],
        "env": env,
        "resources": {"requests": resources, "limits": limits},
        # Starting includes fetching and verifying the model: up to 10 minutes before
        # liveness checks begin.
        "startupProbe": {
            "httpGet": {"path": LIVE_PATH, **port},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 120,
        },
        "readinessProbe": {
            "httpGet": {"path": READY_PATH, **port},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": LIVE_PATH, **port},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "home", "mountPath": HOME},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, not the host's
        ],
    }
    if not knative:  # Knative's queue-proxy drains instead, and refuses lifecycle hooks
        # Endpoints drop a terminating pod a moment after it gets SIGTERM; keep serving
        # until they have, so no request lands on a closed port.
        container["lifecycle"] = {
            "preStop": {"exec": {"command": ["sleep", str(_PRESTOP_SLEEP_S)]}}
        }
    return container


def _volumes() -> list[dict[str, Any]]:
    return [{"name": "home", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]


def _pod_spec(ctx: _Context, revision: Revision) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # SIGTERM lets in-flight requests finish; give them the gateway's timeout.
        "terminationGracePeriodSeconds": math.ceil(ctx.config.request_timeout_s) + _PRESTOP_SLEEP_S,
        "containers": [_container(ctx, revision, knative=False)],
        "volumes": _volumes(),
    }
    if revision.settings.gpu > 0:
        # GPU node pools are usually tainted so that only GPU pods land there.
        spec["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    return spec


def _annotations(ctx: _Context, target: RevisionTarget) -> dict[str, str]:
    return {
        ANNOTATION_PROJECT: ctx.deployment.project,
        ANNOTATION_MODEL: model_uri(target.revision),
        ANNOTATION_WEIGHT: str(target.weight),
    }


def _deployment(ctx: _Context, target: RevisionTarget) -> Manifest:
    number = target.revision.number
    name = revision_name(ctx.name, number)
    labels = ctx.revision_labels(number)
    metadata = ctx.metadata(name, labels)
    metadata["annotations"] = _annotations(ctx, target)
    spec: dict[str, Any] = {}
    if target.replicas is not None:
        # Otherwise the autoscaler owns the count: server-side apply must not reset it.
        spec["replicas"] = target.replicas
    spec.update(
        {
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": labels},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": _pod_spec(ctx, target.revision),
            },
        }
    )
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def _scale_target(ctx: _Context, target: RevisionTarget) -> dict[str, str]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": revision_name(ctx.name, target.revision.number),
    }


def _scale_down_window_s(config: ScalingConfig) -> int:
    """The stable window as a scale-down stabilization window (HPA caps it at an hour)."""
    return min(3600, math.ceil(config.stable_window_s))


def _hpa(ctx: _Context, target: RevisionTarget) -> Manifest:
    number = target.revision.number
    utilization = max(1, round(ctx.config.target_utilization * 100))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": ctx.metadata(revision_name(ctx.name, number), ctx.revision_labels(number)),
        "spec": {
            "scaleTargetRef": _scale_target(ctx, target),
            # An HPA cannot scale to zero: a revision whose floor is 0 keeps one pod.
            "minReplicas": max(1, target.min_replicas),
            "maxReplicas": target.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": utilization},
                    },
                }
            ],
            "behavior": {
                "scaleDown": {"stabilizationWindowSeconds": _scale_down_window_s(ctx.config)}
            },
        },
    }


def in_flight_query(namespace: str, deployment: str, revision: int) -> str:
    """The PromQL KEDA reads: in-flight requests summed over one revision's pods.

    The labels are the pod labels the ServiceMonitor copies onto the runtime's series
    (``podTargetLabels``, with ``.`` and ``/`` turned into ``_``). ``or vector(0)``: no
    pod, no series, and that means no load, not an error.
    """
    selector = (
        f'namespace="{namespace}",app_kubernetes_io_name="{deployment}",'
        f'modelyard_dev_revision="{revision}"'
    )
    return f"sum({IN_FLIGHT_METRIC}{{{selector}}}) or vector(0)"


def _scaled_object(ctx: _Context, target: RevisionTarget) -> Manifest:
    number = target.revision.number
    # The same aim as modelyard's own KPA policy: target_utilization of target_concurrency
    # in-flight requests per pod.
    per_pod = ctx.config.target_concurrency * ctx.config.target_utilization
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": ctx.metadata(revision_name(ctx.name, number), ctx.revision_labels(number)),
        "spec": {
            "scaleTargetRef": _scale_target(ctx, target),
            "minReplicaCount": target.min_replicas,
            "maxReplicaCount": target.max_replicas,
            "pollingInterval": 15,
            # How long without load before the last pod goes (scale to zero only).
            "cooldownPeriod": math.ceil(ctx.config.idle_grace_s),
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": _scale_down_window_s(ctx.config)
                        }
                    }
                }
            },
            # Prometheus unreachable: hold at least one pod rather than guess.
            "fallback": {"failureThreshold": 3, "replicas": max(1, target.min_replicas)},
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": ctx.prometheus_url,
                        "query": in_flight_query(ctx.namespace, ctx.name, number),
                        "threshold": _number(per_pod),
                        "activationThreshold": "0",
                    },
                }
            ],
        },
    }


def _number(value: float) -> str:
    """A float as Kubernetes string fields want it: ``2.8``, ``4`` (never ``2.80000001``)."""
    return f"{value:.6g}"


def _service(ctx: _Context) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": ctx.metadata(ctx.name, {**ctx.labels, LABEL_METRICS: "true"}),
        "spec": {
            "type": "ClusterIP",
            "selector": ctx.labels,
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": SERVICE_PORT,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def _metrics_service(ctx: _Context) -> Manifest:
    """Knative only: a headless Service on the runtime's own port, for Prometheus.

    Scraping through Knative's queue-proxy would count every scrape as a request and
    keep an idle revision from scaling to zero.
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": ctx.metadata(f"{ctx.name}-metrics", {**ctx.labels, LABEL_METRICS: "true"}),
        "spec": {
            "clusterIP": "None",
            "selector": ctx.labels,
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": CONTAINER_PORT,
                    "targetPort": CONTAINER_PORT,
                    "protocol": "TCP",
                }
            ],
        },
    }


def _knative_service(ctx: _Context, targets: Sequence[RevisionTarget]) -> Manifest:
    """One Knative Service: the newest revision as its template, every one in traffic.

    Knative keeps revisions it created earlier; the template describes only the newest,
    named ``<dep>-r<n>`` so that traffic can name every revision. Its template depends
    only on the revision and the deployment's config, because Knative refuses a template
    that changes under the same name.
    """
    newest = targets[-1]
    number = newest.revision.number
    config = ctx.config
    low, high = _KNATIVE_WINDOW_S
    window_s = min(high, max(low, math.ceil(config.stable_window_s)))
    retention_s = min(high, math.ceil(config.idle_grace_s))
    annotations = {
        "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
        "autoscaling.knative.dev/metric": "concurrency",
        "autoscaling.knative.dev/target": _number(
            max(_KNATIVE_TARGET_MIN, config.target_concurrency)
        ),
        "autoscaling.knative.dev/target-utilization-percentage": _number(
            max(1, round(config.target_utilization * 100))
        ),
        "autoscaling.knative.dev/min-scale": str(newest.min_replicas),
        "autoscaling.knative.dev/max-scale": str(newest.max_replicas),
        "autoscaling.knative.dev/window": f"{window_s}s",
        "autoscaling.knative.dev/scale-to-zero-pod-retention-period": f"{retention_s}s",
        ANNOTATION_PROJECT: ctx.deployment.project,
        ANNOTATION_MODEL: model_uri(newest.revision),
    }
    if sum(t.weight for t in targets) == 0:
        traffic: list[dict[str, Any]] = [{"latestRevision": True, "percent": 100}]
    else:
        traffic = [
            {
                "revisionName": revision_name(ctx.name, t.revision.number),
                "latestRevision": False,
                "percent": t.weight,
            }
            for t in targets
        ]
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": ctx.metadata(ctx.name, ctx.labels),
        "spec": {
            "template": {
                "metadata": {
                    "name": revision_name(ctx.name, number),
                    "labels": ctx.revision_labels(number),
                    "annotations": annotations,
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "timeoutSeconds": min(_KNATIVE_TIMEOUT_S, math.ceil(config.request_timeout_s)),
                    "containers": [_container(ctx, newest.revision, knative=True)],
                    "volumes": _volumes(),
                },
            },
            "traffic": traffic,
        },
    }


def _pod_disruption_budget(ctx: _Context) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": ctx.metadata(ctx.name, ctx.labels),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": ctx.labels}},
    }


def _namespaces(*names: str) -> dict[str, Any]:
    return {
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(names)}
            ]
        }
    }


def _tcp(*ports: int | str) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _network_policy(ctx: _Context) -> Manifest:
    """Ingress to the pods only on their serving port, from the deployment's namespace
    (and, with Knative, its system namespaces), and on the metrics port from Prometheus.
    """
    same_namespace: dict[str, Any] = {"podSelector": {}}
    if ctx.autoscaler == "knative":
        ingress = [
            {
                "from": [same_namespace, _namespaces(*KNATIVE_NAMESPACES)],
                "ports": _tcp(*_KNATIVE_TRAFFIC_PORTS),
            },
            {
                "from": [_namespaces(MONITORING_NAMESPACE)],
                "ports": _tcp(CONTAINER_PORT, _KNATIVE_METRICS_PORT),
            },
        ]
    else:
        ingress = [
            {
                "from": [same_namespace, _namespaces(MONITORING_NAMESPACE)],
                "ports": _tcp(PORT_NAME),
            }
        ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": ctx.metadata(ctx.name, ctx.labels),
        "spec": {
            "podSelector": {"matchLabels": ctx.labels},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def _service_monitor(ctx: _Context) -> Manifest:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": ctx.metadata(ctx.name, ctx.labels),
        "spec": {
            "selector": {"matchLabels": {**ctx.labels, LABEL_METRICS: "true"}},
            "endpoints": [
                {"port": PORT_NAME, "path": METRICS_PATH, "scheme": "http", "interval": "15s"}
            ],
            # Copied onto every series: what the KEDA query selects a revision by.
            "podTargetLabels": [LABEL_NAME, LABEL_REVISION],
        },
    }
