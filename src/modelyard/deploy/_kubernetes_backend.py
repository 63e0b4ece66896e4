"""The Kubernetes backend: server-side apply of rendered manifests, rollout watch, pods.

:class:`KubernetesBackend` is an :class:`~modelyard.deploy._backend.OrchestratorBackend`.
Kubernetes starts, restarts, places and (through the HorizontalPodAutoscaler, KEDA or
Knative) scales the replicas; modelyard only states the desired objects and reads back
what runs:

- ``apply`` renders the deployment's objects (``modelyard.deploy.kubernetes_render``: a
  Deployment ``<name>-r<revision>`` per revision, the Service, the autoscaler object, …)
  and sends each with **server-side apply**: ``PATCH`` with content type
  ``application/apply-patch+yaml``, ``fieldManager=modelyard`` and ``force=true``, so
  applying the same state twice changes nothing and modelyard owns the fields it sets
  (a ``kubectl edit`` of them is overwritten on the next pass, by design). Objects of
  revisions no longer wanted are then deleted per kind with one ``DELETE`` of the
  collection, by label selector.
- ``observe`` lists the deployment's Deployments (or its Knative Service) and pods by
  label. Pure functions decide the rest: :func:`rollout_status` is the rule
  ``kubectl rollout status`` applies to a Deployment, and :func:`pod_replica` maps a
  pod's status to an :class:`~modelyard.deploy._backend.ObservedReplica`.
- Clients reach the deployment at ``http://<name>.<namespace>.svc.cluster.local/``, the
  Service's cluster DNS name (:func:`service_endpoint`).

Requests go through the official ``kubernetes`` client's
:meth:`kubernetes.client.ApiClient.call_api` (an optional dependency, imported on first
use) with its configuration from a kubeconfig file or, inside a pod, the service
account. Raw JSON is read back rather than the client's generated models: the pure
functions then work on exactly what the API reference documents, and custom resources
(KEDA, Knative, the Prometheus operator) need no models.

Errors: 401 and 403 become :class:`~modelyard.core.errors.PermissionDenied`, 400, 404 and
422 :class:`~modelyard.core.errors.InvalidInput` (with the API server's causes), 409
:class:`~modelyard.core.errors.Conflict`; an unreachable API server, a timeout, 429 and
5xx answers become :class:`OSError`, which the controller retries.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

from modelyard.core.backends import BackendSpec
from modelyard.core.deployments import Deployment, ReplicaState
from modelyard.core.errors import Conflict, InvalidInput, ModelyardError, PermissionDenied
from modelyard.deploy._backend import Observed, ObservedReplica, RevisionTarget

JsonObject = dict[str, Any]
Renderer = Callable[[Deployment, Sequence[RevisionTarget]], list[JsonObject]]

FIELD_MANAGER = "modelyard"
APPLY_PATCH = "application/apply-patch+yaml"
NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
REVISION_LABEL = "modelyard.dev/revision"
INSTALL_HINT = "pip install 'modelyard[kubernetes]'"

# Container waiting reasons after which the kubelet keeps failing until someone changes
# the pod spec or the image: the replica is failed, not merely starting.
FAILED_WAITING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)


class Resource(NamedTuple):
    """Where the API serves one kind: ``/api/v1`` (core) or ``/apis/<group>/<version>``."""

    prefix: str
    plural: str


# The kinds the renderer emits, by (apiVersion, kind); a static table rather than API
# discovery, so a pass costs no extra requests and an unexpected kind fails loudly.
RESOURCES: Mapping[tuple[str, str], Resource] = {
    ("apps/v1", "Deployment"): Resource("/apis/apps/v1", "deployments"),
    ("v1", "Service"): Resource("/api/v1", "services"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): Resource(
        "/apis/autoscaling/v2", "horizontalpodautoscalers"
    ),
    ("policy/v1", "PodDisruptionBudget"): Resource("/apis/policy/v1", "poddisruptionbudgets"),
    ("networking.k8s.io/v1", "NetworkPolicy"): Resource(
        "/apis/networking.k8s.io/v1", "networkpolicies"
    ),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): Resource(
        "/apis/monitoring.coreos.com/v1", "servicemonitors"
    ),
    ("keda.sh/v1alpha1", "ScaledObject"): Resource("/apis/keda.sh/v1alpha1", "scaledobjects"),
    ("serving.knative.dev/v1", "Service"): Resource("/apis/serving.knative.dev/v1", "services"),
}
_DEPLOYMENTS = RESOURCES[("apps/v1", "Deployment")]
_KNATIVE_SERVICES = RESOURCES[("serving.knative.dev/v1", "Service")]
_PODS = Resource("/api/v1", "pods")


def resource_for(api_version: str, kind: str) -> Resource:
    """The REST location of a kind the renderer emits.

    Raises:
        InvalidInput: a kind this backend does not know how to apply.
    """
    resource = RESOURCES.get((api_version, kind))
    if resource is None:
        known = ", ".join(f"{k} ({v})" for v, k in sorted(RESOURCES))
        raise InvalidInput(
            f"cannot apply a {kind!r} of apiVersion {api_version!r} to Kubernetes: "
            f"the kubernetes backend applies only {known}"
        )
    return resource


def object_path(resource: Resource, namespace: str, name: str = "") -> str:
    """``/apis/apps/v1/namespaces/<ns>/deployments[/<name>]`` (path segments quoted)."""
    path = f"{resource.prefix}/namespaces/{quote(namespace, safe='')}/{resource.plural}"
    return f"{path}/{quote(name, safe='')}" if name else path


def service_endpoint(name: str, namespace: str) -> str:
    """The cluster-internal URL of a deployment's Service (its cluster DNS name)."""
    return f"http://{name}.{namespace}.svc.cluster.local/"


def deployment_selector(name: str) -> str:
    """The label selector of every object modelyard created for deployment ``name``."""
    return f"{NAME_LABEL}={name},{MANAGED_BY_LABEL}={FIELD_MANAGER}"


def stale_revision_selector(name: str, keep: Iterable[int]) -> str:
    """The selector of ``name``'s per-revision objects whose revision is not in ``keep``.

    ``notin`` alone also matches objects *without* the label (Kubernetes' set-based
    selector semantics), which would delete the shared Service or NetworkPolicy; the
    bare ``modelyard.dev/revision`` requirement (the label exists) keeps them out.
    """
    selector = f"{deployment_selector(name)},{REVISION_LABEL}"
    kept = sorted(set(keep))
    if kept:  # an empty ``notin ()`` is a parse error on the API server
        selector += f",{REVISION_LABEL} notin ({','.join(str(r) for r in kept)})"
    return selector


# --- pure decisions ----------------------------------------------------------------------


def _dict(value: Any) -> JsonObject:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[JsonObject]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def parse_time_ms(value: Any) -> int | None:
    """An RFC 3339 timestamp as the API writes it (``2024-05-01T12:00:00Z``) in epoch ms."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _condition(status: JsonObject, kind: str) -> JsonObject | None:
    for condition in _list(status.get("conditions")):
        if condition.get("type") == kind:
            return condition
    return None


@dataclass(frozen=True)
class RolloutStatus:
    """What ``kubectl rollout status`` would say about one Deployment.

    Attributes:
        done: The rollout finished: the newest spec is observed, every desired replica
            is updated and available, and no old replica is left.
        failed: The Deployment's ``Progressing`` condition says
            ``ProgressDeadlineExceeded``: Kubernetes gave up waiting.
        message: The line ``kubectl`` prints.
    """

    done: bool
    failed: bool
    message: str


def rollout_status(deployment: Mapping[str, Any]) -> RolloutStatus:
    """The ``kubectl rollout status`` rule for one ``apps/v1`` Deployment (its JSON).

    Mirrors kubectl's ``DeploymentStatusViewer``: until the controller has observed the
    latest generation nothing in ``status`` can be trusted; then a progress deadline
    exceeded is a failure, and the rollout is done when ``updatedReplicas`` reached
    ``spec.replicas``, no old replica remains (``replicas`` ≤ ``updatedReplicas``) and
    every updated replica is available.
    """
    meta = _dict(deployment.get("metadata"))
    spec = _dict(deployment.get("spec"))
    status = _dict(deployment.get("status"))
    name = str(meta.get("name", ""))
    if _int(meta.get("generation")) > _int(status.get("observedGeneration")):
        return RolloutStatus(False, False, "Waiting for deployment spec update to be observed...")
    progressing = _condition(status, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return RolloutStatus(False, True, f'deployment "{name}" exceeded its progress deadline')
    updated = _int(status.get("updatedReplicas"))
    replicas = _int(status.get("replicas"))
    available = _int(status.get("availableReplicas"))
    wanted = spec.get("replicas")
    if isinstance(wanted, int) and updated < wanted:
        return RolloutStatus(
            False,
            False,
            f'Waiting for deployment "{name}" rollout to finish: {updated} out of {wanted} '
            "new replicas have been updated...",
        )
    if replicas > updated:
        return RolloutStatus(
            False,
            False,
            f'Waiting for deployment "{name}" rollout to finish: {replicas - updated} old '
            "replicas are pending termination...",
        )
    if available < updated:
        return RolloutStatus(
            False,
            False,
            f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} '
            "updated replicas are available...",
        )
    return RolloutStatus(True, False, f'deployment "{name}" successfully rolled out')


def knative_status(service: Mapping[str, Any]) -> RolloutStatus:
    """Whether a Knative Service is rolled out: its latest generation observed and
    ``Ready`` true (what ``kn service describe`` reports); ``Ready`` false is a failure.
    """
    meta = _dict(service.get("metadata"))
    status = _dict(service.get("status"))
    name = str(meta.get("name", ""))
    if _int(meta.get("generation")) > _int(status.get("observedGeneration")):
        return RolloutStatus(False, False, f'Knative service "{name}": waiting for the update')
    ready = _condition(status, "Ready")
    if ready is None or ready.get("status") == "Unknown":
        detail = f": {ready.get('message')}" if ready and ready.get("message") else ""
        return RolloutStatus(False, False, f'Knative service "{name}" is not ready yet{detail}')
    if ready.get("status") != "True":
        reason = ready.get("reason") or "NotReady"
        return RolloutStatus(
            False, True, f'Knative service "{name}": {reason}: {ready.get("message", "")}'
        )
    return RolloutStatus(True, False, f'Knative service "{name}" is ready')


def _last_exit(container: JsonObject) -> str:
    terminated = _dict(_dict(container.get("lastState")).get("terminated"))
    if not terminated:
        return ""
    reason = terminated.get("reason") or "Error"
    return f"last exit: {reason} (exit code {_int(terminated.get('exitCode'))})"


def _container_problem(containers: Iterable[JsonObject]) -> tuple[bool, str]:
    """(failed, reason) from container statuses: a hopeless waiting reason fails the
    replica; other waiting or terminated states only explain why it is not ready."""
    notes: list[str] = []
    for container in containers:
        name = container.get("name", "?")
        state = _dict(container.get("state"))
        waiting = _dict(state.get("waiting"))
        last = _last_exit(container)
        if waiting:
            reason = str(waiting.get("reason") or "Waiting")
            text = f"{reason}: {waiting['message']}" if waiting.get("message") else reason
            text = f"{text} (container {name}{'; ' + last if last else ''})"
            if reason in FAILED_WAITING_REASONS:
                return True, text
            notes.append(text)
            continue
        terminated = _dict(state.get("terminated"))
        if terminated:
            notes.append(
                f"container {name} exited: {terminated.get('reason') or 'Error'} "
                f"(exit code {_int(terminated.get('exitCode'))})"
            )
        elif last:
            notes.append(f"container {name} restarted, {last}")
    return False, "; ".join(notes)


def pod_replica(pod: Mapping[str, Any]) -> ObservedReplica | None:
    """One pod's JSON as a replica record, or None when it is not a revision's pod.

    The state, first rule that applies:

    - phase ``Succeeded`` → ``stopped``; ``Failed`` → ``failed`` (with the pod's reason,
      e.g. ``Evicted``);
    - ``deletionTimestamp`` set → ``draining`` (it got SIGTERM and finishes its requests);
    - a container (or init container) waiting with ``CrashLoopBackOff``,
      ``ImagePullBackOff``, ``ErrImagePull``, ``InvalidImageName``,
      ``CreateContainerConfigError`` or ``CreateContainerError`` → ``failed`` with the
      kubelet's reason and message, and the last exit (``OOMKilled``) when there is one;
    - ``Running`` with the ``Ready`` condition true → ``ready``;
    - otherwise (``Pending``, not ready yet, ``Unknown``) → ``starting``, with the reason
      when there is one (``Unschedulable: 0/3 nodes are available…``, a restart after
      ``OOMKilled``).
    """
    meta = _dict(pod.get("metadata"))
    spec = _dict(pod.get("spec"))
    status = _dict(pod.get("status"))
    revision_label = _dict(meta.get("labels")).get(REVISION_LABEL)
    if not isinstance(revision_label, str) or not revision_label.isdigit():
        return None
    phase = status.get("phase") or "Pending"
    ready_condition = _condition(status, "Ready") or {}
    is_ready = phase == "Running" and ready_condition.get("status") == "True"
    failed, problem = _container_problem(
        _list(status.get("initContainerStatuses")) + _list(status.get("containerStatuses"))
    )
    state: ReplicaState
    reason = ""
    if phase == "Succeeded":
        state = "stopped"
        reason = str(status.get("reason") or "")
    elif phase == "Failed":
        state = "failed"
        why = status.get("reason") or "Failed"
        reason = f"{why}: {status['message']}" if status.get("message") else str(why)
    elif meta.get("deletionTimestamp"):
        state = "draining"
        reason = "terminating"
    elif failed:
        state, reason = "failed", problem
    elif is_ready:
        state = "ready"
    else:
        state = "starting"
        notes: list[str] = []
        scheduled = _condition(status, "PodScheduled")
        if scheduled is not None and scheduled.get("status") == "False":
            notes.append(
                f"{scheduled.get('reason') or 'Unschedulable'}: {scheduled.get('message', '')}"
            )
        if phase == "Unknown":
            notes.append("pod phase Unknown: its node stopped reporting")
        if problem:
            notes.append(problem)
        reason = "; ".join(notes)
    return ObservedReplica(
        id=str(meta.get("name", "")),
        revision=int(revision_label),
        state=state,
        node=str(spec.get("nodeName") or ""),
        reason=reason.strip(),
        started_at_ms=parse_time_ms(meta.get("creationTimestamp")),
        # kept while it drains: when it became ready is still true then
        ready_at_ms=parse_time_ms(ready_condition.get("lastTransitionTime")) if is_ready else None,
    )


def _revision_of(obj: Mapping[str, Any]) -> int | None:
    label = _dict(_dict(obj.get("metadata")).get("labels")).get(REVISION_LABEL)
    return int(label) if isinstance(label, str) and label.isdigit() else None


def summarize(
    deployments: Sequence[Mapping[str, Any]],
    replicas: Sequence[ObservedReplica],
    expected: frozenset[int] | None,
) -> tuple[bool, str]:
    """Whether a deployment's Deployments are rolled out, and a one-line status.

    Rolled out means: every expected revision has its Deployment and ``kubectl rollout
    status`` says done for each, and no Deployment or pod of another revision is left.
    ``expected`` is the revisions last applied (None after a restart: then those whose
    Deployments exist).
    """
    present = {rev for d in deployments if (rev := _revision_of(d)) is not None}
    if expected is None and not present:
        return False, "no Deployment found for this deployment"
    wanted = present if expected is None else expected
    waiting: list[str] = []
    for rev in sorted(wanted - present):
        waiting.append(f"revision {rev}: Deployment not created yet")
    for deployment in deployments:
        rev = _revision_of(deployment)
        if rev is None:
            continue
        if rev not in wanted:
            waiting.append(f"revision {rev}: old Deployment still present")
            continue
        status = rollout_status(deployment)
        if not status.done:
            waiting.append(status.message)
    old = sum(1 for r in replicas if r.revision not in wanted and r.state != "stopped")
    if old:
        waiting.append(f"{old} replica(s) of old revisions still running")
    if waiting:
        return False, "; ".join(waiting)
    ready = sum(1 for r in replicas if r.state == "ready")
    return True, f"rolled out: {ready} replica(s) ready across {len(wanted)} revision(s)"


# --- the backend ------------------------------------------------------------------------


def _default_renderer(server_url: str) -> Renderer:
    def render(deployment: Deployment, targets: Sequence[RevisionTarget]) -> list[JsonObject]:
        from modelyard.deploy.kubernetes_render import render_manifests

        return render_manifests(deployment, targets, server_url=server_url)

    return render


class KubernetesBackend:
    """An :class:`~modelyard.deploy._backend.OrchestratorBackend` on a Kubernetes cluster.

    Args:
        kubeconfig: The kubeconfig file; None: ``$KUBECONFIG`` or ``~/.kube/config``, and
            inside a pod (no such file, ``KUBERNETES_SERVICE_HOST`` set) the pod's
            service account.
        context: The kubeconfig context to use (None: its current context).
        in_cluster: Use the pod's service account even if a kubeconfig exists.
        renderer: Turns a deployment and its targets into manifests (default:
            ``modelyard.deploy.kubernetes_render.render_manifests``); injectable so tests
            and other renderers need no cluster-specific code here.
        server_url: The modelyard server's URL as pods reach it, passed to the renderer.
        request_timeout_s: Connect and read timeout of each API request: a hung API
            server must not stall the controller's pass.
        api_client: An already configured ``kubernetes.client.ApiClient`` (then the
            kubeconfig arguments are unused).
    """

    def __init__(
        self,
        *,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        in_cluster: bool = False,
        renderer: Renderer | None = None,
        server_url: str = "",
        request_timeout_s: float = 10.0,
        api_client: Any = None,
    ) -> None:
        if request_timeout_s <= 0:
            raise InvalidInput(f"request_timeout_s must be > 0, got {request_timeout_s}")
        self._kubeconfig = os.fspath(kubeconfig) if kubeconfig is not None else None
        self._context = context
        self._in_cluster = in_cluster
        self._render = renderer or _default_renderer(server_url)
        self._timeout = (request_timeout_s, request_timeout_s)
        self._api: Any = api_client
        self._owns_api = api_client is None
        # Revisions last applied per (namespace, name): what ``observe`` expects to run.
        self._applied: dict[tuple[str, str], frozenset[int]] = {}
        # Kinds whose collection DELETE this API server refused with 405 (Services before
        # Kubernetes added ``deletecollection`` to them): listed and deleted one by one.
        self._one_by_one: set[Resource] = set()

    # -- the contract ----------------------------------------------------------------

    def apply(self, deployment: Deployment, targets: Sequence[RevisionTarget]) -> None:
        """Server-side apply every rendered object, then delete stale revisions' objects.

        New objects go first, so a replaced revision disappears only after its successor
        was accepted; the controller keeps a revision in ``targets`` until it may go.
        """
        namespace = self._namespace(deployment)
        keep = frozenset(t.revision.number for t in targets)
        manifests = self._render(deployment, targets) if targets else []
        kinds: list[Resource] = []
        for index, manifest in enumerate(manifests):
            resource, name, obj_namespace = self._identify(manifest, index, namespace)
            if resource not in kinds:
                kinds.append(resource)
            path = object_path(resource, obj_namespace, name)
            self._request(
                "PATCH",
                path,
                {"fieldManager": FIELD_MANAGER, "force": "true"},
                body=manifest,
                content_type=APPLY_PATCH,
                what=f"{manifest['kind']} {obj_namespace}/{name}",
            )
        self._applied[(namespace, deployment.name)] = keep
        sweep = kinds if targets else list(dict.fromkeys(RESOURCES.values()))
        selector = stale_revision_selector(deployment.name, keep)
        for resource in sweep:
            self._delete_collection(resource, namespace, selector, missing_ok=not targets)

    def observe(self, deployment: Deployment) -> Observed:
        """List the deployment's Deployments (or Knative Service) and pods; summarize."""
        namespace = self._namespace(deployment)
        knative = self._spec(deployment).autoscaler == "knative"
        pods = self._list(
            _PODS, namespace, f"{NAME_LABEL}={deployment.name},{REVISION_LABEL}", "pods"
        )
        replicas = tuple(
            sorted(
                (r for pod in pods if (r := pod_replica(pod)) is not None),
                key=lambda r: (r.revision, r.id),
            )
        )
        if knative:
            services = self._list(
                _KNATIVE_SERVICES, namespace, deployment_selector(deployment.name), "services"
            )
            statuses = [knative_status(s) for s in services]
            rolled_out = bool(statuses) and all(s.done for s in statuses)
            message = "; ".join(s.message for s in statuses) or "Knative service not created yet"
        else:
            deployments = self._list(
                _DEPLOYMENTS, namespace, deployment_selector(deployment.name), "deployments"
            )
            rolled_out, message = summarize(
                deployments, replicas, self._applied.get((namespace, deployment.name))
            )
        return Observed(
            replicas=replicas,
            rolled_out=rolled_out,
            endpoint=service_endpoint(deployment.name, namespace),
            message=message,
        )

    def remove(self, deployment: Deployment) -> None:
        """Delete every kind's objects labelled for the deployment; kinds whose API the
        cluster lacks (KEDA or Knative not installed) are skipped."""
        namespace = self._namespace(deployment)
        selector = deployment_selector(deployment.name)
        for resource in dict.fromkeys(RESOURCES.values()):
            self._delete_collection(resource, namespace, selector, missing_ok=True)
        self._applied.pop((namespace, deployment.name), None)

    def close(self) -> None:
        """Close the API client's connection pool (only one this backend created)."""
        if self._api is not None and self._owns_api:
            self._api.close()
            self._api = None

    # -- helpers ---------------------------------------------------------------------

    @staticmethod
    def _spec(deployment: Deployment) -> BackendSpec:
        if deployment.backend.kind != "kubernetes":
            raise InvalidInput(
                f"deployment {deployment.name!r} runs on the {deployment.backend.kind} "
                "backend, not kubernetes"
            )
        return deployment.backend.resolved(deployment.config.min_replicas)

    def _namespace(self, deployment: Deployment) -> str:
        return self._spec(deployment).namespace

    @staticmethod
    def _identify(manifest: Any, index: int, namespace: str) -> tuple[Resource, str, str]:
        if not isinstance(manifest, dict):
            raise InvalidInput(f"rendered object #{index} is not a mapping")
        meta = _dict(manifest.get("metadata"))
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"rendered object #{index} ({manifest.get('kind')}) has no name")
        resource = resource_for(str(manifest.get("apiVersion")), str(manifest.get("kind")))
        obj_namespace = meta.get("namespace") or namespace
        if obj_namespace != namespace:
            raise InvalidInput(
                f"rendered {manifest.get('kind')} {name!r} is in namespace {obj_namespace!r}, "
                f"but the deployment's namespace is {namespace!r}"
            )
        return resource, name, str(obj_namespace)

    def _list(
        self,
        resource: Resource,
        namespace: str,
        selector: str,
        what: str,
        status_ok: tuple[int, ...] = (),
    ) -> list[JsonObject]:
        answer = self._request(
            "GET",
            object_path(resource, namespace),
            {"labelSelector": selector},
            what=f"{what} in namespace {namespace}",
            status_ok=status_ok,
        )
        return _list(answer.get("items"))

    def _delete_collection(
        self, resource: Resource, namespace: str, selector: str, *, missing_ok: bool
    ) -> None:
        """Delete the kind's objects matching ``selector``; ``missing_ok``: a 404 (the
        kind's API is not installed, the namespace is gone) means nothing to delete."""
        missing = (404,) if missing_ok else ()
        if resource not in self._one_by_one:
            try:
                self._request(
                    "DELETE",
                    object_path(resource, namespace),
                    {"labelSelector": selector, "propagationPolicy": "Background"},
                    what=f"{resource.plural} in namespace {namespace} ({selector})",
                    status_ok=missing,
                )
                return
            except _MethodNotAllowed:
                self._one_by_one.add(resource)
        # The kind has no deletecollection verb on this server: list, then delete each.
        for item in self._list(resource, namespace, selector, resource.plural, missing):
            name = str(_dict(item.get("metadata")).get("name", ""))
            self._request(
                "DELETE",
                object_path(resource, namespace, name),
                {"propagationPolicy": "Background"},
                what=f"{resource.plural} {namespace}/{name}",
                status_ok=(404,),
            )

    def _client(self) -> Any:
        if self._api is not None:
            return self._api
        try:
            from kubernetes import client, config
        except ImportError as exc:
            raise InvalidInput(
                f"the kubernetes backend needs the kubernetes client: {INSTALL_HINT}"
            ) from exc
        configuration = client.Configuration()
        in_cluster = self._in_cluster or (
            self._kubeconfig is None
            and not os.environ.get("KUBECONFIG")
            and not Path("~/.kube/config").expanduser().exists()
            and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        )
        try:
            # The client's config loaders carry no annotations.
            if in_cluster:
                config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
            else:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=self._kubeconfig,
                    context=self._context,
                    client_configuration=configuration,
                )
        except Exception as exc:  # a bad file fails in many ways (YAML, keys, base64)
            source = self._kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            where = "the pod's service account" if in_cluster else f"kubeconfig {source}"
            raise InvalidInput(
                f"cannot configure the Kubernetes client from {where}: {exc}"
            ) from exc
        self._api = client.ApiClient(configuration)
        return self._api

    def _request(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        *,
        what: str,
        body: JsonObject | None = None,
        content_type: str | None = None,
        status_ok: tuple[int, ...] = (),
    ) -> JsonObject:
        """Send one request through the client library; the JSON answer, or an error.

        ``status_ok`` lists error statuses that count as success (404 on a delete).
        """
        api = self._client()
        import urllib3
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        method, url, headers, body, post_params = api.param_serialize(
            method=method,
            resource_path=path,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        if query:
            url += "?" + urlencode(query)
        try:
            response = api.call_api(method, url, headers, body, post_params, self._timeout)
            data = response.read()
        except (urllib3.exceptions.HTTPError, ApiException) as exc:
            # ApiException here is the client's wrapper of a TLS failure (status 0).
            raise OSError(
                f"cannot reach the Kubernetes API at {api.configuration.host} ({what}): {exc}"
            ) from exc
        status = int(response.status)
        answer = _json(data)
        if 200 <= status < 300 or status in status_ok:
            return answer
        raise _api_error(status, answer, what, method)


class _MethodNotAllowed(ModelyardError):
    """405: the API server does not offer this verb on this kind."""


def _json(data: bytes | None) -> JsonObject:
    if not data:
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        return {"message": data[:500].decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {}


def _api_error(status: int, answer: JsonObject, what: str, method: str) -> Exception:
    """The modelyard error for a non-2xx answer (a ``Status`` object in the body)."""
    message = str(answer.get("message") or answer.get("reason") or f"HTTP {status}")
    causes = [
        f"{c.get('field')}: {c.get('message')}" if c.get("field") else str(c.get("message"))
        for c in _list(_dict(answer.get("details")).get("causes"))
    ]
    detail = f"{message} ({'; '.join(causes)})" if causes and status != 422 else message
    if status in (401, 403):
        label = "Unauthorized" if status == 401 else "Forbidden"
        return PermissionDenied(f"Kubernetes refused {what} ({status} {label}): {message}")
    if status == 422:
        listed = "; ".join(causes) if causes else message
        return InvalidInput(f"Kubernetes rejected {what} as invalid: {listed}")
    if status in (400, 404):
        hint = " (is the namespace there and the kind's API installed?)" if status == 404 else ""
        return InvalidInput(f"Kubernetes rejected {what} ({status}): {detail}{hint}")
    if status == 405:
        return _MethodNotAllowed(f"{method} not allowed on {what}: {detail}")
    if status == 409:
        return Conflict(f"Kubernetes reported a conflict on {what}: {detail}")
    if status == 429 or status >= 500:
        return OSError(f"the Kubernetes API is unavailable ({status}) for {what}: {detail}")
    return ModelyardError(f"Kubernetes answered {status} for {what}: {detail}")
