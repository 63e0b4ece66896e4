"""The Kubernetes backend's pure decisions: pod status → replica record, the
``kubectl rollout status`` rule, the REST table and label selectors, and its refusals
that need no API server.

The pod and Deployment JSON below is written after the Kubernetes API reference (Pod
v1 ``status``: ``phase``, ``conditions``, ``containerStatuses[].state/lastState``;
Deployment apps/v1 ``status``), shaped as ``kubectl get -o json`` prints it; it was not
recorded from a cluster, none can run here.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.core.backends import BackendSpec
from modelyard.core.deployments import Deployment, Revision, RuntimeSettings, ScalingConfig
from modelyard.core.errors import Conflict, InvalidInput, ModelyardError, PermissionDenied
from modelyard.deploy._backend import ObservedReplica, OrchestratorBackend, RevisionTarget
from modelyard.deploy._kubernetes_backend import (
    FAILED_WAITING_REASONS,
    RESOURCES,
    KubernetesBackend,
    _api_error,
    knative_status,
    object_path,
    parse_time_ms,
    pod_replica,
    resource_for,
    rollout_status,
    service_endpoint,
    stale_revision_selector,
    summarize,
)

T0 = "2024-05-01T12:00:00Z"
T0_MS = 1714564800000
T1 = "2024-05-01T12:00:07Z"


def make_deployment(
    name: str = "iris", *, backend: BackendSpec | None = None, min_replicas: int = 1
) -> Deployment:
    rev = Revision(1, "iris", 1, "models:/iris/1", RuntimeSettings(), "ready", "", 100, 0.0, 0)
    return Deployment(
        1,
        "default",
        name,
        ScalingConfig(min_replicas=min_replicas),
        "active",
        1,
        None,
        None,
        (rev,),
        1,
        "u",
        0,
        0,
        backend or BackendSpec(kind="kubernetes", namespace="ml"),
    )


def pod(
    *,
    name: str = "iris-r2-7c9d8-abcde",
    revision: str | None = "2",
    phase: str = "Running",
    ready: str | None = "True",
    deleting: bool = False,
    waiting: tuple[str, str] | None = None,
    last_terminated: tuple[str, int] | None = None,
    node: str = "node-a",
) -> dict[str, Any]:
    """A pod of one container ``model``, as ``GET /api/v1/namespaces/ml/pods`` lists it."""
    labels = {"app.kubernetes.io/name": "iris", "pod-template-hash": "7c9d8"}
    if revision is not None:
        labels["modelyard.dev/revision"] = revision
    container: dict[str, Any] = {
        "name": "model",
        "image": "ghcr.io/modelyard/runtime:0.1.0",
        "ready": ready == "True",
        "restartCount": 0,
        "state": {"running": {"startedAt": T0}},
    }
    if waiting is not None:
        container["state"] = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    if last_terminated is not None:
        container["restartCount"] = 3
        container["lastState"] = {
            "terminated": {
                "reason": last_terminated[0],
                "exitCode": last_terminated[1],
                "startedAt": T0,
                "finishedAt": T1,
            }
        }
    conditions = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": T0},
        {"type": "Initialized", "status": "True", "lastTransitionTime": T0},
    ]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready, "lastTransitionTime": T1})
        conditions.append({"type": "ContainersReady", "status": ready, "lastTransitionTime": T1})
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "ml",
        "labels": labels,
        "creationTimestamp": T0,
    }
    if deleting:
        meta["deletionTimestamp"] = T1
        meta["deletionGracePeriodSeconds"] = 30
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": node, "containers": [{"name": "model"}]},
        "status": {
            "phase": phase,
            "conditions": conditions,
            "containerStatuses": [container],
            "startTime": T0,
        },
    }


def test_a_running_ready_pod_is_a_ready_replica_with_its_times_and_node() -> None:
    replica = pod_replica(pod())
    assert replica == ObservedReplica(
        id="iris-r2-7c9d8-abcde",
        revision=2,
        state="ready",
        node="node-a",
        reason="",
        started_at_ms=T0_MS,
        ready_at_ms=T0_MS + 7000,
    )


def test_a_pending_unschedulable_pod_is_starting_and_says_why() -> None:
    p = pod(phase="Pending", ready=None, node="")
    p["status"]["conditions"] = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu.",
        }
    ]
    del p["status"]["containerStatuses"]
    replica = pod_replica(p)
    assert replica is not None
    assert replica.state == "starting"
    assert replica.reason == "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu."
    assert replica.node == ""
    assert replica.ready_at_ms is None


def test_a_running_pod_not_ready_yet_is_starting() -> None:
    replica = pod_replica(pod(ready="False"))
    assert replica is not None
    assert (replica.state, replica.reason, replica.ready_at_ms) == ("starting", "", None)


def test_a_pod_being_deleted_is_draining() -> None:
    replica = pod_replica(pod(deleting=True))
    assert replica is not None
    assert (replica.state, replica.reason) == ("draining", "terminating")


def test_crash_loop_after_oom_is_failed_with_the_kubelet_reason_and_the_last_exit() -> None:
    message = "back-off 40s restarting failed container=model pod=iris-r2-7c9d8-abcde"
    replica = pod_replica(
        pod(
            ready="False",
            waiting=("CrashLoopBackOff", message),
            last_terminated=("OOMKilled", 137),
        )
    )
    assert replica is not None
    assert replica.state == "failed"
    assert replica.reason == (
        f"CrashLoopBackOff: {message} (container model; last exit: OOMKilled (exit code 137))"
    )


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("ImagePullBackOff", 'Back-off pulling image "ghcr.io/modelyard/runtime:9"'),
        ("ErrImagePull", "rpc error: code = NotFound desc = failed to pull and unpack image"),
        ("CreateContainerConfigError", 'secret "hf-token" not found'),
    ],
)
def test_hopeless_waiting_reasons_fail_the_replica(reason: str, message: str) -> None:
    replica = pod_replica(pod(phase="Pending", ready="False", waiting=(reason, message)))
    assert replica is not None
    assert replica.state == "failed"
    assert replica.reason.startswith(f"{reason}: {message}")


def test_a_container_still_creating_is_only_starting() -> None:
    replica = pod_replica(pod(phase="Pending", ready="False", waiting=("ContainerCreating", "")))
    assert replica is not None
    assert (replica.state, replica.reason) == ("starting", "ContainerCreating (container model)")


def test_a_crash_looping_init_container_fails_the_replica() -> None:
    p = pod(phase="Pending", ready="False")
    p["status"]["initContainerStatuses"] = [
        {
            "name": "fetch-model",
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
            "lastState": {"terminated": {"reason": "Error", "exitCode": 1}},
        }
    ]
    replica = pod_replica(p)
    assert replica is not None
    assert replica.state == "failed"
    assert "fetch-model" in replica.reason
    assert "exit code 1" in replica.reason


def test_a_restart_after_oom_explains_a_replica_that_is_not_ready_again_yet() -> None:
    replica = pod_replica(pod(ready="False", last_terminated=("OOMKilled", 137)))
    assert replica is not None
    assert replica.state == "starting"
    assert replica.reason == "container model restarted, last exit: OOMKilled (exit code 137)"
    ready_again = pod_replica(pod(last_terminated=("OOMKilled", 137)))
    assert ready_again is not None
    assert (ready_again.state, ready_again.reason) == ("ready", "")


def test_terminal_phases_are_stopped_or_failed() -> None:
    done = pod_replica(pod(phase="Succeeded", ready="False"))
    assert done is not None
    assert done.state == "stopped"
    evicted = pod(phase="Failed", ready="False")
    evicted["status"]["reason"] = "Evicted"
    evicted["status"]["message"] = "The node was low on resource: memory."
    replica = pod_replica(evicted)
    assert replica is not None
    assert replica.state == "failed"
    assert replica.reason == "Evicted: The node was low on resource: memory."


def test_pods_without_a_revision_label_are_not_replicas() -> None:
    assert pod_replica(pod(revision=None)) is None
    assert pod_replica(pod(revision="canary")) is None


PHASES = st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"])
WAITING = st.none() | st.tuples(
    st.sampled_from([*sorted(FAILED_WAITING_REASONS), "ContainerCreating", "PodInitializing"]),
    st.text(max_size=20),
)
LAST = st.none() | st.tuples(
    st.sampled_from(["OOMKilled", "Error", "Completed"]), st.integers(0, 255)
)


@given(
    phase=PHASES,
    ready=st.sampled_from([None, "True", "False", "Unknown"]),
    deleting=st.booleans(),
    waiting=WAITING,
    last=LAST,
)
def test_pod_state_invariants(
    phase: str,
    ready: str | None,
    deleting: bool,
    waiting: tuple[str, str] | None,
    last: tuple[str, int] | None,
) -> None:
    replica = pod_replica(
        pod(phase=phase, ready=ready, deleting=deleting, waiting=waiting, last_terminated=last)
    )
    assert replica is not None
    assert replica.revision == 2
    terminal = phase in ("Succeeded", "Failed")
    hopeless = waiting is not None and waiting[0] in FAILED_WAITING_REASONS
    if phase == "Succeeded":
        assert replica.state == "stopped"
    elif phase == "Failed":
        assert replica.state == "failed"
    elif deleting:
        assert replica.state == "draining"
    elif hopeless:
        assert waiting is not None
        assert replica.state == "failed"
        assert replica.reason.startswith(waiting[0])
    # ready exactly when Kubernetes would route to it
    routed = phase == "Running" and ready == "True" and not deleting and not hopeless
    assert (replica.state == "ready") == (routed and not terminal)
    if replica.state == "ready":
        assert replica.ready_at_ms is not None
    assert (replica.ready_at_ms is not None) == (phase == "Running" and ready == "True")
    if replica.state == "failed":
        assert replica.reason
    if replica.state == "ready":
        assert replica.reason == ""
    if last is not None and not terminal and not deleting and replica.state != "ready":
        assert f"exit code {last[1]}" in replica.reason


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(
    junk=st.dictionaries(st.sampled_from(["metadata", "spec", "status", "kind"]), JSON, max_size=4),
    status=st.dictionaries(
        st.sampled_from(["phase", "conditions", "containerStatuses", "reason"]), JSON, max_size=4
    ),
)
def test_odd_pod_json_never_raises(junk: dict[str, Any], status: dict[str, Any]) -> None:
    pod_replica(junk)
    p = pod()
    p["status"].update(status)
    replica = pod_replica(p)
    assert replica is not None
    assert replica.state in (
        "starting",
        "ready",
        "draining",
        "stopped",
        "failed",
    )


# --- rollout status -----------------------------------------------------------------------


def k8s_deployment(
    *,
    revision: str = "2",
    generation: int = 2,
    observed: int = 2,
    spec_replicas: int | None = 2,
    replicas: int = 2,
    updated: int = 2,
    ready: int = 2,
    available: int = 2,
    deadline_exceeded: bool = False,
) -> dict[str, Any]:
    """An apps/v1 Deployment as ``GET …/deployments`` lists it."""
    progressing = {
        "type": "Progressing",
        "status": "False" if deadline_exceeded else "True",
        "reason": "ProgressDeadlineExceeded" if deadline_exceeded else "NewReplicaSetAvailable",
        "message": f'ReplicaSet "iris-r{revision}-7c9d8" has timed out progressing.'
        if deadline_exceeded
        else f'ReplicaSet "iris-r{revision}-7c9d8" has successfully progressed.',
    }
    spec: dict[str, Any] = {"selector": {"matchLabels": {"modelyard.dev/revision": revision}}}
    if spec_replicas is not None:
        spec["replicas"] = spec_replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"iris-r{revision}",
            "namespace": "ml",
            "generation": generation,
            "labels": {
                "app.kubernetes.io/name": "iris",
                "app.kubernetes.io/managed-by": "modelyard",
                "modelyard.dev/revision": revision,
            },
        },
        "spec": spec,
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                progressing,
            ],
        },
    }


@pytest.mark.parametrize(
    ("fields", "done", "failed", "message"),
    [
        ({}, True, False, 'deployment "iris-r2" successfully rolled out'),
        (
            {"generation": 3, "observed": 2},
            False,
            False,
            "Waiting for deployment spec update to be observed...",
        ),
        (
            {"updated": 1, "available": 1},
            False,
            False,
            'Waiting for deployment "iris-r2" rollout to finish: 1 out of 2 new replicas '
            "have been updated...",
        ),
        (
            {"replicas": 3},
            False,
            False,
            'Waiting for deployment "iris-r2" rollout to finish: 1 old replicas are pending '
            "termination...",
        ),
        (
            {"available": 1},
            False,
            False,
            'Waiting for deployment "iris-r2" rollout to finish: 1 of 2 updated replicas are '
            "available...",
        ),
        (
            {"deadline_exceeded": True, "available": 0},
            False,
            True,
            'deployment "iris-r2" exceeded its progress deadline',
        ),
        (
            {"spec_replicas": 0, "replicas": 0, "updated": 0, "ready": 0, "available": 0},
            True,
            False,
            'deployment "iris-r2" successfully rolled out',
        ),
    ],
)
def test_rollout_status_says_what_kubectl_says(
    fields: dict[str, Any], done: bool, failed: bool, message: str
) -> None:
    status = rollout_status(k8s_deployment(**fields))
    assert (status.done, status.failed, status.message) == (done, failed, message)


@given(
    generation=st.integers(1, 5),
    observed=st.integers(0, 5),
    spec_replicas=st.none() | st.integers(0, 6),
    replicas=st.integers(0, 8),
    updated=st.integers(0, 8),
    available=st.integers(0, 8),
    deadline=st.booleans(),
)
def test_rollout_status_is_done_exactly_when_every_kubectl_check_passes(
    generation: int,
    observed: int,
    spec_replicas: int | None,
    replicas: int,
    updated: int,
    available: int,
    deadline: bool,
) -> None:
    status = rollout_status(
        k8s_deployment(
            generation=generation,
            observed=observed,
            spec_replicas=spec_replicas,
            replicas=replicas,
            updated=updated,
            available=available,
            deadline_exceeded=deadline,
        )
    )
    seen = generation <= observed
    assert status.failed == (seen and deadline)
    assert status.done == (
        seen
        and not deadline
        and (spec_replicas is None or updated >= spec_replicas)
        and replicas <= updated
        and available >= updated
    )
    assert not (status.done and status.failed)
    assert status.message


def test_knative_status_follows_the_ready_condition() -> None:
    ksvc: dict[str, Any] = {
        "metadata": {"name": "iris", "generation": 2},
        "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert knative_status(ksvc).done
    waiting = copy.deepcopy(ksvc)
    waiting["status"]["observedGeneration"] = 1
    assert not knative_status(waiting).done
    broken = copy.deepcopy(ksvc)
    broken["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "False",
            "reason": "RevisionMissing",
            "message": "Configuration does not have any ready Revision.",
        }
    ]
    status = knative_status(broken)
    assert status.failed
    assert "RevisionMissing" in status.message


def ready_replica(revision: int, name: str) -> ObservedReplica:
    return ObservedReplica(id=name, revision=revision, state="ready")


def test_summary_rolled_out_when_every_expected_revision_is_and_nothing_old_is_left() -> None:
    deps = [k8s_deployment(revision="1"), k8s_deployment(revision="2")]
    pods = [ready_replica(1, "a"), ready_replica(2, "b")]
    done, message = summarize(deps, pods, frozenset({1, 2}))
    assert done, message
    assert message == "rolled out: 2 replica(s) ready across 2 revision(s)"


def test_summary_waits_for_a_missing_deployment_an_old_one_and_old_pods() -> None:
    deps = [k8s_deployment(revision="1")]
    done, message = summarize(deps, [ready_replica(1, "a")], frozenset({2}))
    assert not done
    assert message == (
        "revision 2: Deployment not created yet; revision 1: old Deployment still present; "
        "1 replica(s) of old revisions still running"
    )
    stopped_old = ObservedReplica(id="x", revision=1, state="stopped")
    done, _ = summarize([k8s_deployment(revision="2")], [stopped_old], frozenset({2}))
    assert done


def test_summary_after_a_restart_trusts_the_deployments_found_but_not_nothing() -> None:
    assert summarize([k8s_deployment(revision="2")], [], None)[0]
    assert summarize([], [], None) == (False, "no Deployment found for this deployment")
    assert summarize([], [], frozenset())[0]


# --- REST table, selectors, endpoint ----------------------------------------------------


def test_each_kind_the_renderer_emits_has_its_rest_path() -> None:
    paths = {
        kind: object_path(resource_for(api_version, kind), "ml", "iris")
        for (api_version, kind) in RESOURCES
        if (api_version, kind) != ("serving.knative.dev/v1", "Service")
    }
    assert paths == {
        "Deployment": "/apis/apps/v1/namespaces/ml/deployments/iris",
        "Service": "/api/v1/namespaces/ml/services/iris",
        "HorizontalPodAutoscaler": (
            "/apis/autoscaling/v2/namespaces/ml/horizontalpodautoscalers/iris"
        ),
        "PodDisruptionBudget": "/apis/policy/v1/namespaces/ml/poddisruptionbudgets/iris",
        "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/ml/networkpolicies/iris",
        "ServiceMonitor": "/apis/monitoring.coreos.com/v1/namespaces/ml/servicemonitors/iris",
        "ScaledObject": "/apis/keda.sh/v1alpha1/namespaces/ml/scaledobjects/iris",
    }
    knative = resource_for("serving.knative.dev/v1", "Service")
    assert object_path(knative, "ml") == "/apis/serving.knative.dev/v1/namespaces/ml/services"


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [("v1", "ConfigMap"), ("apps/v1beta1", "Deployment"), ("serving.knative.dev/v1", "Route")],
)
def test_an_unknown_kind_is_refused_by_name(api_version: str, kind: str) -> None:
    with pytest.raises(InvalidInput, match=f"cannot apply a '{kind}' of apiVersion"):
        resource_for(api_version, kind)


def test_stale_selector_keeps_shared_objects_out() -> None:
    assert stale_revision_selector("iris", [2, 1, 2]) == (
        "app.kubernetes.io/name=iris,app.kubernetes.io/managed-by=modelyard,"
        "modelyard.dev/revision,modelyard.dev/revision notin (1,2)"
    )
    assert stale_revision_selector("iris", []) == (
        "app.kubernetes.io/name=iris,app.kubernetes.io/managed-by=modelyard,modelyard.dev/revision"
    )


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Kubernetes' label selector semantics for the forms the backend writes
    (``k=v``, ``k`` exists, ``k notin (a,b)``), after the API concepts reference."""
    requirements: list[str] = []
    depth = 0
    current = ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            requirements.append(current)
            current = ""
        else:
            current += ch
    requirements.append(current)
    for req in requirements:
        if " notin " in req:
            key, values = req.split(" notin ")
            if labels.get(key) in values.strip("()").split(","):
                return False  # a missing key matches notin
        elif "=" in req:
            key, value = req.split("=")
            if labels.get(key) != value:
                return False
        elif req not in labels:
            return False
    return True


@given(
    keep=st.sets(st.integers(1, 6), max_size=4),
    revision=st.none() | st.integers(1, 6),
    name=st.sampled_from(["iris", "other"]),
)
def test_stale_selector_matches_exactly_other_revisions_objects(
    keep: set[int], revision: int | None, name: str
) -> None:
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "modelyard"}
    if revision is not None:
        labels["modelyard.dev/revision"] = str(revision)
    matched = selector_matches(stale_revision_selector("iris", keep), labels)
    assert matched == (name == "iris" and revision is not None and revision not in keep)


def test_endpoint_is_the_service_dns_name() -> None:
    assert service_endpoint("iris", "ml") == "http://iris.ml.svc.cluster.local/"


def test_time_parsing() -> None:
    assert parse_time_ms(T0) == T0_MS
    assert parse_time_ms("yesterday") is None
    assert parse_time_ms(None) is None


# --- refusals before any request ---------------------------------------------------------


def target(dep: Deployment) -> RevisionTarget:
    return RevisionTarget(dep.revisions[0], weight=100, min_replicas=1, max_replicas=3)


def test_the_backend_satisfies_the_orchestrator_contract() -> None:
    backend: OrchestratorBackend = KubernetesBackend(renderer=lambda d, t: [])
    backend.close()


def test_a_deployment_on_another_backend_is_refused() -> None:
    backend = KubernetesBackend(renderer=lambda d, t: [])
    dep = make_deployment(backend=BackendSpec())
    with pytest.raises(InvalidInput, match="runs on the local backend, not kubernetes"):
        backend.apply(dep, [target(dep)])


def test_an_unknown_rendered_kind_is_refused_before_anything_is_sent() -> None:
    def render(d: Deployment, t: Any) -> list[dict[str, Any]]:
        return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}]

    backend = KubernetesBackend(renderer=render, kubeconfig="/nonexistent/kubeconfig")
    dep = make_deployment()
    with pytest.raises(InvalidInput, match="'ConfigMap'"):
        backend.apply(dep, [target(dep)])


@pytest.mark.parametrize(
    ("manifest", "match"),
    [
        ({"apiVersion": "v1", "kind": "Service", "metadata": {}}, "has no name"),
        (
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "x"}},
            "in namespace 'x', but the deployment's namespace is 'ml'",
        ),
        ("not a mapping", "is not a mapping"),
    ],
)
def test_malformed_rendered_objects_are_refused(manifest: Any, match: str) -> None:
    backend = KubernetesBackend(renderer=lambda d, t: [manifest])
    dep = make_deployment()
    with pytest.raises(InvalidInput, match=match):
        backend.apply(dep, [target(dep)])


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path: Any) -> None:
    missing = tmp_path / "nope.yaml"
    backend = KubernetesBackend(kubeconfig=missing)
    with pytest.raises(
        InvalidInput, match=f"cannot configure the Kubernetes client from kubeconfig {missing}"
    ):
        backend.observe(make_deployment())


def test_a_missing_client_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    backend = KubernetesBackend(kubeconfig="/nonexistent")
    with pytest.raises(InvalidInput, match=r"pip install 'modelyard\[kubernetes\]'"):
        backend.observe(make_deployment())


def test_a_bad_timeout_is_refused() -> None:
    with pytest.raises(InvalidInput, match="request_timeout_s must be > 0"):
        KubernetesBackend(request_timeout_s=0)


# --- the real renderer's objects are what this backend can apply and sweep --------------


@pytest.mark.parametrize(
    ("autoscaler", "min_replicas", "fixed"),
    [("hpa", 1, None), ("hpa", 1, 2), ("keda", 0, None), ("knative", 0, None)],
)
def test_every_rendered_object_has_a_rest_path_and_only_revision_objects_are_swept(
    autoscaler: str, min_replicas: int, fixed: int | None
) -> None:
    from modelyard.deploy.kubernetes_render import render_manifests

    spec = BackendSpec.from_dict(
        {"kind": "kubernetes", "namespace": "ml", "autoscaler": autoscaler}
    )
    dep = make_deployment(backend=spec, min_replicas=min_replicas)
    rev2 = Revision(2, "iris", 2, "models:/iris/2", RuntimeSettings(), "ready", "", 10, 0.0, 0)
    targets = [
        RevisionTarget(dep.revisions[0], 90, min_replicas, 3, fixed),
        RevisionTarget(rev2, 10, min_replicas, 3, fixed),
    ]
    manifests = render_manifests(dep, targets)
    assert manifests
    stale = stale_revision_selector("iris", [2])  # revision 1 retired
    for manifest in manifests:
        resource = resource_for(manifest["apiVersion"], manifest["kind"])
        assert object_path(resource, "ml", manifest["metadata"]["name"])
        assert manifest["metadata"]["namespace"] == "ml"
        labels = manifest["metadata"]["labels"]
        revision = labels.get("modelyard.dev/revision")
        # the sweep deletes revision 1's own objects and never a shared one
        assert selector_matches(stale, labels) == (revision == "1")


@pytest.mark.parametrize(
    ("status", "kind", "text"),
    [
        (400, InvalidInput, "Kubernetes rejected Deployment ml/iris-r1 (400): bad"),
        (401, PermissionDenied, "(401 Unauthorized): bad"),
        (403, PermissionDenied, "(403 Forbidden): bad"),
        (404, InvalidInput, "is the namespace there and the kind's API installed?"),
        (409, Conflict, "Kubernetes reported a conflict on Deployment ml/iris-r1: bad"),
        (422, InvalidInput, "as invalid: spec.replicas: must be >= 0"),
        (429, OSError, "the Kubernetes API is unavailable (429)"),
        (503, OSError, "the Kubernetes API is unavailable (503)"),
        (418, ModelyardError, "Kubernetes answered 418 for Deployment ml/iris-r1: bad"),
    ],
)
def test_api_answers_map_to_errors_that_name_the_object(
    status: int, kind: type[Exception], text: str
) -> None:
    answer = {
        "kind": "Status",
        "message": "bad",
        "details": {"causes": [{"field": "spec.replicas", "message": "must be >= 0"}]},
    }
    error = _api_error(status, answer, "Deployment ml/iris-r1", "PATCH")
    assert type(error) is kind
    assert text in str(error)
