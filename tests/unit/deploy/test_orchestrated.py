"""The orchestrated controller with a fake orchestrator backend that records its calls.

Pure decisions (targets, record changes, rollout steps, back-off, modelyard's own
autoscaler on an orchestrator) are tested on plain values, their invariants with
Hypothesis; the controller's passes run against a real SQLite store with an injected
clock, so nothing sleeps and no cluster is needed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from modelyard.core.backends import DEFAULT_IMAGE, BackendSpec
from modelyard.core.clock import FakeClock
from modelyard.core.deployments import (
    ACTIVE_REPLICA_STATES,
    Deployment,
    DeploymentEvent,
    Replica,
    ReplicaState,
    Revision,
    RevisionDraft,
    RevisionState,
    Rollout,
    RolloutPhase,
    RuntimeSettings,
    ScalingConfig,
    Strategy,
)
from modelyard.deploy._backend import (
    Launched,
    Observed,
    ObservedReplica,
    OrchestratorBackend,
    RevisionTarget,
)
from modelyard.deploy._orchestrated import OrchestratedController
from modelyard.deploy._orchestrated_calls import (
    BackendFactory,
    default_backend_factories,
    lazy_factory,
)
from modelyard.deploy._orchestrated_replicas import (
    RECORD_ID_MAX,
    failed_revisions,
    record_id,
    replica_changes,
)
from modelyard.deploy._orchestrated_rollout import OrchestratedView, orchestrated_step
from modelyard.deploy._orchestrated_scaling import OrchestratedScalers, orchestrated_bounds
from modelyard.deploy._orchestrated_targets import (
    BACKOFF_MAX_S,
    held_replicas,
    retry_delay_s,
    targets_for,
)
from modelyard.deploy._pass import Pass
from modelyard.deploy._reconcile import DeploymentController
from modelyard.deploy.signals import RevisionCounters
from modelyard.store import DeploymentChange, MetadataStore

K8S = BackendSpec(kind="kubernetes", namespace="ml", autoscaler="hpa", image=DEFAULT_IMAGE)
RAY_OURS = BackendSpec(kind="ray", address="auto", autoscaler="modelyard")


class FakeOrchestrator:
    """Runs nothing: records apply/remove calls and reports what a test sets."""

    def __init__(self) -> None:
        self.applied: list[tuple[RevisionTarget, ...]] = []
        self.removed: list[str] = []
        self.observe_calls = 0
        self.observed = Observed((), rolled_out=False)
        self.apply_error: Exception | None = None
        self.observe_error: Exception | None = None
        self.remove_error: Exception | None = None
        self.closed = False

    def apply(self, deployment: Deployment, targets: Sequence[RevisionTarget]) -> None:
        if self.apply_error is not None:
            raise self.apply_error
        self.applied.append(tuple(targets))

    def observe(self, deployment: Deployment) -> Observed:
        self.observe_calls += 1
        if self.observe_error is not None:
            raise self.observe_error
        return self.observed

    def remove(self, deployment: Deployment) -> None:
        if self.remove_error is not None:
            raise self.remove_error
        self.removed.append(deployment.name)

    def close(self) -> None:
        self.closed = True

    def report(
        self,
        *replicas: ObservedReplica,
        rolled_out: bool = False,
        load: Mapping[int, RevisionCounters] | None = None,
    ) -> None:
        self.observed = Observed(tuple(replicas), rolled_out=rolled_out, load=load)


def _check_protocol(fake: FakeOrchestrator) -> OrchestratorBackend:
    return fake  # mypy checks that the fake fulfils the contract


def deploy(
    store: MetadataStore, backend: BackendSpec = K8S, name: str = "d", **scaling: Any
) -> Deployment:
    scaling.setdefault("min_replicas", 1)
    draft = RevisionDraft("m", 1, "models:/m/1", RuntimeSettings(), weight=100)
    return store.deployments.create(
        "default", name, ScalingConfig(**scaling), draft, "u", backend=backend
    )


def controller(
    store: MetadataStore, fake: FakeOrchestrator, clock: FakeClock | None = None
) -> OrchestratedController:
    factories: dict[str, BackendFactory] = {"kubernetes": lambda _s: fake, "ray": lambda _s: fake}
    return OrchestratedController(store, factories, clock=clock or FakeClock())


def events(store: MetadataStore, dep: Deployment, kind: str | None = None) -> list[DeploymentEvent]:
    return store.deployments.events(dep.id, kind=kind)


def pod(name: str, revision: int, state: Any, reason: str = "") -> ObservedReplica:
    return ObservedReplica(name, revision, state, node="node-a", reason=reason)


def ready_first_revision(
    store: MetadataStore, fake: FakeOrchestrator, ctl: OrchestratedController
) -> Deployment:
    fake.report(pod("d-1-a", 1, "ready"), rolled_out=True)
    ctl.run_once()
    dep = store.deployments.get("d")
    assert dep.revision(1) is not None
    assert dep.revisions[0].state == "ready"
    return dep


# --- the controller's passes ------------------------------------------------------------


def test_apply_runs_only_when_the_targets_or_the_generation_change(
    store: MetadataStore,
) -> None:
    dep = deploy(store, max_replicas=3)
    fake = FakeOrchestrator()
    ctl = controller(store, fake)
    ctl.run_once()
    ctl.run_once()
    assert len(fake.applied) == 1  # twice the same desired state: one apply
    (target,) = fake.applied[0]
    assert (target.revision.number, target.weight) == (1, 100)
    assert (target.min_replicas, target.max_replicas, target.replicas) == (1, 3, None)
    assert fake.observe_calls == 2  # observe runs every pass
    applied = events(store, dep, "orchestrator")
    assert [e.message for e in applied] == [
        "applied to kubernetes: revision 1 (100%, 1-3 replicas)"
    ]
    store.deployments.change(dep.id, DeploymentChange(config=replace(dep.config, max_replicas=5)))
    ctl.run_once()
    ctl.run_once()
    assert len(fake.applied) == 2
    assert fake.applied[1][0].max_replicas == 5


def test_an_apply_error_is_one_event_and_retried_with_back_off(store: MetadataStore) -> None:
    dep = deploy(store)
    fake = FakeOrchestrator()
    clock = FakeClock()
    ctl = controller(store, fake, clock)
    fake.apply_error = OSError("connection refused")
    ctl.run_once()
    ctl.run_once()  # still backing off: not even tried
    clock.advance(2.5)
    ctl.run_once()  # tried again, the same error: no new event
    failures = [e for e in events(store, dep, "orchestrator") if "failed" in e.message]
    assert len(failures) == 1
    assert "OSError: connection refused" in failures[0].message
    assert failures[0].data["op"] == "apply"
    fake.apply_error = RuntimeError("admission webhook denied the request")
    clock.advance(10)
    ctl.run_once()  # a different error: its own event
    failures = [e for e in events(store, dep, "orchestrator") if "failed" in e.message]
    assert len(failures) == 2
    assert "admission webhook" in failures[1].message
    fake.apply_error = None
    clock.advance(60)
    ctl.run_once()
    assert len(fake.applied) == 1
    messages = [e.message for e in events(store, dep, "orchestrator")]
    assert "apply works again after 3 failed attempt(s)" in messages
    assert messages[-1].startswith("applied to kubernetes")


def test_new_desired_state_is_applied_at_once_despite_back_off(store: MetadataStore) -> None:
    dep = deploy(store)
    fake = FakeOrchestrator()
    ctl = controller(store, fake)
    fake.apply_error = OSError("timed out")
    ctl.run_once()
    fake.apply_error = None
    store.deployments.change(dep.id, DeploymentChange(config=replace(dep.config, max_replicas=2)))
    ctl.run_once()  # no clock advance: the new state is not held back by the old failure
    assert len(fake.applied) == 1
    assert fake.applied[0][0].max_replicas == 2


def test_an_observe_error_is_one_event_and_changes_no_record(store: MetadataStore) -> None:
    dep = deploy(store)
    fake = FakeOrchestrator()
    clock = FakeClock()
    ctl = controller(store, fake, clock)
    fake.report(pod("d-1-a", 1, "ready"))
    ctl.run_once()
    fake.observe_error = OSError("the API server is unreachable")
    for _ in range(3):
        clock.advance(BACKOFF_MAX_S)
        ctl.run_once()
    failures = [e for e in events(store, dep, "orchestrator") if "observe failed" in e.message]
    assert len(failures) == 1
    assert [r.state for r in store.deployments.replicas(dep.id)] == ["ready"]


def test_observed_replicas_become_records_and_make_the_revision_ready(
    store: MetadataStore,
) -> None:
    dep = deploy(store)
    fake = FakeOrchestrator()
    clock = FakeClock()
    ctl = controller(store, fake, clock)
    fake.report(pod("d-r1-7c9f-abcde", 1, "starting"))
    ctl.run_once()
    (record,) = store.deployments.replicas(dep.id)
    assert (record.id, record.pid, record.port, record.mode) == ("d-r1-7c9f-abcde", 0, 0, "k8s")
    assert (record.state, record.cpu, record.memory_mb) == ("starting", 1.0, 512)
    assert store.deployments.get("d").revisions[0].state == "pending"
    clock.advance(3)
    fake.report(pod("d-r1-7c9f-abcde", 1, "ready"))
    ctl.run_once()
    (record,) = store.deployments.replicas(dep.id)
    assert record.state == "ready"
    assert record.ready_at_ms == int(clock.now() * 1000)
    assert store.deployments.get("d").revisions[0].state == "ready"
    assert any(e.message == "revision 1 is ready" for e in events(store, dep, "revision"))
    assert any("ready on node-a" in e.message for e in events(store, dep, "replica"))
    fake.report()  # the pod is gone
    ctl.run_once()
    assert store.deployments.replicas(dep.id) == []
    (gone,) = store.deployments.replicas(dep.id, active_only=False)
    assert gone.state == "stopped"
    assert gone.exit_reason == "no longer reported by kubernetes"


def test_a_replica_left_out_of_one_observation_is_reopened_when_it_is_back(
    store: MetadataStore,
) -> None:
    dep = deploy(store)
    fake = FakeOrchestrator()
    ctl = controller(store, fake)
    fake.report(pod("d-1-a", 1, "ready"))
    ctl.run_once()
    fake.report()  # a partial answer: the replica looks gone
    ctl.run_once()
    fake.report(pod("d-1-a", 1, "ready"))
    ctl.run_once()
    (record,) = store.deployments.replicas(dep.id, active_only=False)
    assert (record.state, record.stopped_at_ms, record.exit_reason) == ("ready", None, "")
    assert not any("cannot record" in e.message for e in events(store, dep, "replica"))


def test_a_new_revision_fails_when_every_replica_failed_with_a_reason(
    store: MetadataStore,
) -> None:
    dep = deploy(store)
    fake = FakeOrchestrator()
    ctl = controller(store, fake)
    why = "CrashLoopBackOff: ModuleNotFoundError: No module named 'sklearn'"
    fake.report(pod("d-1-a", 1, "failed", why), pod("d-1-b", 1, "starting"))
    ctl.run_once()
    assert store.deployments.get("d").revisions[0].state == "pending"  # one still starting
    fake.report(pod("d-1-a", 1, "failed", why), pod("d-1-b", 1, "failed", why))
    ctl.run_once()
    rev = store.deployments.get("d").revisions[0]
    assert rev.state == "failed"
    assert rev.error == why
    assert any(why in e.message for e in events(store, dep, "revision"))
    ctl.run_once()
    assert fake.applied[-1] == ()  # a failed revision is no target: nothing runs


def test_a_rolling_rollout_applies_the_target_at_100_and_ends_when_rolled_out(
    store: MetadataStore,
) -> None:
    fake = FakeOrchestrator()
    deploy(store)
    ctl = controller(store, fake)
    dep = ready_first_revision(store, fake, ctl)
    bigger = RuntimeSettings(cpu=2.0, memory_mb=2048)  # a right-sizing as a new revision
    store.deployments.change(
        dep.id,
        DeploymentChange(
            new_revision=RevisionDraft("m", 1, "models:/m/1", bigger),
            rollout=Rollout("rolling", target=2, stable=1),
        ),
    )
    ctl.run_once()
    dep = store.deployments.get("d")
    assert dep.rollout is not None
    assert dep.rollout.phase == "stepping"
    assert dep.weights == {2: 100}
    stable, target = fake.applied[-1]  # the old revision stays until the new one runs
    assert (stable.revision.number, stable.weight, stable.min_replicas) == (1, 0, 1)
    assert (target.revision.number, target.weight) == (2, 100)
    assert target.revision.settings.memory_mb == 2048
    # Kubernetes is still rolling: the old pod runs, the new one starts.
    fake.report(pod("d-1-a", 1, "ready"), pod("d-2-a", 2, "starting"), rolled_out=False)
    ctl.run_once()
    dep = store.deployments.get("d")
    assert dep.rollout is not None
    assert dep.rollout.phase == "stepping"
    fake.report(pod("d-2-a", 2, "ready"), rolled_out=True)
    ctl.run_once()
    dep = store.deployments.get("d")
    assert dep.rollout is not None
    assert dep.rollout.phase == "done"
    assert (dep.stable_revision, dep.previous_stable) == (2, 1)
    done = events(store, dep, "rollout")[-1]
    assert "rolling update done" in done.message
    assert done.data["gate"] == "replica health"
    assert [t.revision.number for t in fake.applied[-1]] == [2]  # now the old one goes


def test_a_rolling_rollout_whose_target_fails_goes_back_to_stable(
    store: MetadataStore,
) -> None:
    fake = FakeOrchestrator()
    deploy(store)
    ctl = controller(store, fake)
    dep = ready_first_revision(store, fake, ctl)
    store.deployments.change(
        dep.id,
        DeploymentChange(
            new_revision=RevisionDraft("m", 1, "models:/m/1", RuntimeSettings()),
            rollout=Rollout("rolling", target=2, stable=1),
        ),
    )
    ctl.run_once()
    fake.report(pod("d-1-a", 1, "ready"), pod("d-2-a", 2, "failed", "OOMKilled"))
    ctl.run_once()
    dep = store.deployments.get("d")
    assert dep.rollout is not None
    assert dep.rollout.phase == "rolled_back"
    assert dep.weights == {1: 100}
    assert dep.stable_revision == 1
    assert "OOMKilled" in events(store, dep, "rollout")[-1].message
    assert [t.revision.number for t in fake.applied[-1]] == [1]


def canary_deployment(
    store: MetadataStore, fake: FakeOrchestrator, ctl: OrchestratedController
) -> Deployment:
    deploy(store)
    dep = ready_first_revision(store, fake, ctl)
    ro = Rollout("canary", target=2, stable=1, steps=(25, 100), step_interval_s=60)
    draft = RevisionDraft("m", 1, "models:/m/1", RuntimeSettings())
    new, _ = store.deployments.change(dep.id, DeploymentChange(new_revision=draft, rollout=ro))
    return new


def test_a_canary_steps_its_weights_while_its_replicas_stay_healthy(
    store: MetadataStore,
) -> None:
    fake = FakeOrchestrator()
    clock = FakeClock()
    ctl = controller(store, fake, clock)
    canary_deployment(store, fake, ctl)
    ctl.run_once()  # the canary starts at weight 0, with at least one replica
    canary = {t.revision.number: t for t in fake.applied[-1]}
    assert (canary[2].weight, canary[2].min_replicas, canary[1].weight) == (0, 1, 100)
    fake.report(pod("d-1-a", 1, "ready"), pod("d-2-a", 2, "ready"), rolled_out=True)
    ctl.run_once()
    assert store.deployments.get("d").weights == {2: 25, 1: 75}
    assert {t.revision.number: t.weight for t in fake.applied[-1]} == {1: 75, 2: 25}
    clock.advance(30)
    ctl.run_once()
    assert store.deployments.get("d").weights == {2: 25, 1: 75}  # mid-step
    clock.advance(31)
    ctl.run_once()
    dep = store.deployments.get("d")
    assert dep.weights == {2: 100}
    assert dep.rollout is not None
    assert dep.rollout.phase == "done"
    assert dep.stable_revision == 2
    assert "no replica of revision 2 failed" in events(store, dep, "rollout")[-1].message


def test_a_canary_is_rolled_back_when_one_of_its_replicas_fails(store: MetadataStore) -> None:
    fake = FakeOrchestrator()
    ctl = controller(store, fake)
    canary_deployment(store, fake, ctl)
    fake.report(pod("d-1-a", 1, "ready"), pod("d-2-a", 2, "ready"))
    ctl.run_once()
    assert store.deployments.get("d").weights == {2: 25, 1: 75}
    fake.report(
        pod("d-1-a", 1, "ready"),
        pod("d-2-a", 2, "ready"),
        pod("d-2-b", 2, "failed", "Error: exit code 137"),
    )
    ctl.run_once()
    dep = store.deployments.get("d")
    assert dep.weights == {1: 100}
    assert dep.rollout is not None
    assert dep.rollout.phase == "rolled_back"
    message = events(store, dep, "rollout")[-1].message
    assert "rollback: replica d-2-b of revision 2 failed: Error: exit code 137" in message
    assert [t.revision.number for t in fake.applied[-1]] == [1]


def test_deleting_calls_remove_then_purges(store: MetadataStore) -> None:
    dep = deploy(store)
    fake = FakeOrchestrator()
    clock = FakeClock()
    ctl = controller(store, fake, clock)
    fake.report(pod("d-1-a", 1, "ready"))
    ctl.run_once()
    store.deployments.change(dep.id, DeploymentChange(status="deleting"))
    fake.remove_error = OSError("forbidden")
    ctl.run_once()
    assert [d.name for d in store.deployments.list_all()] == ["d"]  # not yet removed
    fake.remove_error = None
    clock.advance(5)
    ctl.run_once()
    assert fake.removed == ["d"]
    assert store.deployments.list_all() == []
    (record,) = store.deployments.replicas(dep.id, active_only=False)
    assert (record.state, record.exit_reason) == ("stopped", "deployment deleted")
    assert events(store, dep, "deployment")[-1].message == "deleted: removed from kubernetes"


def test_local_deployments_are_left_alone(store: MetadataStore) -> None:
    deploy(store, backend=BackendSpec())
    built: list[BackendSpec] = []

    def factory(spec: BackendSpec) -> OrchestratorBackend:
        built.append(spec)
        return FakeOrchestrator()

    ctl = OrchestratedController(store, {"kubernetes": factory}, clock=FakeClock())
    ctl.run_once()
    assert built == []
    dep = store.deployments.get("d")
    assert all(e.kind == "deployment" for e in events(store, dep))


def test_a_missing_backend_module_or_kind_is_an_event_not_a_crash(
    store: MetadataStore,
) -> None:
    k8s = deploy(store)
    ray = deploy(store, backend=RAY_OURS, name="r")
    missing = lazy_factory("modelyard.deploy._no_such_backend", "Nothing", "kubernetes")
    ctl = OrchestratedController(store, {"kubernetes": missing}, clock=FakeClock())
    ctl.run_once()
    ctl.run_once()
    (k8s_event,) = events(store, k8s, "orchestrator")
    assert "the kubernetes backend is not available" in k8s_event.message
    assert "install modelyard[kubernetes]" in k8s_event.message
    (ray_event,) = events(store, ray, "orchestrator")
    assert "this server has no ray backend" in ray_event.message


def test_the_default_factories_build_the_real_backends_without_connecting() -> None:
    without_packages = default_backend_factories()
    assert set(without_packages) == {"kubernetes"}  # Ray needs the server's package cache
    factories = default_backend_factories(packages=object(), server_url="http://my:5000")
    assert set(factories) == {"kubernetes", "ray"}
    k8s = factories["kubernetes"](K8S)
    ray = factories["ray"](RAY_OURS)
    assert type(k8s).__name__ == "KubernetesBackend"
    assert type(ray).__name__ == "RayServeBackend"
    for backend in (k8s, ray):
        assert all(callable(getattr(backend, m)) for m in ("apply", "observe", "remove", "close"))


def test_modelyard_autoscaling_on_ray_holds_min_replicas_and_says_why(
    store: MetadataStore,
) -> None:
    dep = deploy(store, backend=RAY_OURS, min_replicas=0, max_replicas=4)
    fake = FakeOrchestrator()
    ctl = controller(store, fake)
    ctl.run_once()
    ctl.run_once()
    (target,) = fake.applied[-1]
    assert target.replicas == 1
    (scale,) = events(store, dep, "scale")
    assert "no load signal" in scale.message
    assert scale.data["desired"] == 1


class IngressLoad:
    """One revision's cumulative counters as an ingress keeps them: ``hold(s, n)`` keeps
    ``n`` requests in flight for ``s`` seconds of the fake clock (each taking 0.1 s)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.counters = RevisionCounters(now_s=clock.monotonic())

    def hold(self, seconds: float, in_flight: int) -> RevisionCounters:
        self.clock.advance(seconds)
        c = self.counters
        done = round(in_flight * seconds / 0.1)
        self.counters = replace(
            c,
            now_s=self.clock.monotonic(),
            in_flight=in_flight,
            arrivals=c.arrivals + done,
            completions=c.completions + done,
            service_count=c.service_count + done,
            service_s_sum=c.service_s_sum + 0.1 * done,
            load_area=c.load_area + in_flight * seconds,
        )
        return self.counters


def serve_replicas(n: int) -> list[ObservedReplica]:
    return [pod(f"rev-1-{i}", 1, "ready") for i in range(n)]


def test_modelyard_autoscaling_on_ray_follows_the_ingress_load_up_and_back_down(
    store: MetadataStore,
) -> None:
    """Rising load: more replicas at once (KPA's panic mode); idle: back to one replica
    after the stable window, never zero although min_replicas is 0."""
    dep = deploy(
        store,
        backend=RAY_OURS,
        min_replicas=0,
        max_replicas=4,
        target_concurrency=1.0,
        stable_window_s=20.0,
        panic_window_s=4.0,
    )
    fake = FakeOrchestrator()
    clock = FakeClock()
    ctl = controller(store, fake, clock)
    load = IngressLoad(clock)
    fake.report(*serve_replicas(1), rolled_out=True, load={1: load.counters})
    ctl.run_once()
    assert fake.applied[-1][0].replicas == 1
    counts = []
    for _ in range(3):  # three requests in flight, on one replica aiming at 0.7
        fake.report(*serve_replicas(1), rolled_out=True, load={1: load.hold(2.0, 3)})
        ctl.run_once()
        counts.append(fake.applied[-1][0].replicas)
    assert counts[-1] == 4  # ceil(3 / 0.7) = 5, bounded by max_replicas
    up = next(e for e in events(store, dep, "scale") if e.data.get("desired") == 4)
    assert up.message.startswith("1 -> 4: panic")
    assert up.data["in_flight"] == 3
    assert up.data["mean_concurrency"] == 3.0
    assert up.data["ready"] == 1
    assert up.revision == 1
    idle: list[int] = []
    for _ in range(40):  # idle for 80 s; Serve runs what was applied last
        running = fake.applied[-1][0].replicas or 0
        fake.report(*serve_replicas(running), rolled_out=True, load={1: load.hold(2.0, 0)})
        ctl.run_once()
        idle.append(fake.applied[-1][0].replicas)
    assert idle[0] == 4  # panic mode holds for the stable window after the last burst
    assert idle[-1] == 1  # back down, and never to zero on Ray
    assert min(idle) == 1
    assert idle == sorted(idle, reverse=True)
    decided = [e.data["desired"] for e in events(store, dep, "scale") if "desired" in e.data]
    assert all(a != b for a, b in itertools.pairwise(decided))  # one event per change
    assert decided[-1] == 1
    targets = [t for (t,) in fake.applied]
    assert all(t.min_replicas == 0 and t.max_replicas == 4 for t in targets)


def test_a_pass_without_load_holds_the_decided_count_and_says_so_once(
    store: MetadataStore,
) -> None:
    dep = deploy(store, backend=RAY_OURS, min_replicas=1, max_replicas=3, target_concurrency=1.0)
    fake = FakeOrchestrator()
    clock = FakeClock()
    ctl = controller(store, fake, clock)
    load = IngressLoad(clock)
    fake.report(*serve_replicas(1), load={1: load.counters})
    ctl.run_once()
    for _ in range(2):
        fake.report(*serve_replicas(1), load={1: load.hold(2.0, 4)})
        ctl.run_once()
    assert fake.applied[-1][0].replicas == 3
    applies = len(fake.applied)
    for _ in range(3):  # the ingress cannot be read: hold 3, whatever the time
        clock.advance(30)
        fake.report(*serve_replicas(3), load=None)
        ctl.run_once()
    assert len(fake.applied) == applies  # nothing new to apply
    holding = [e for e in events(store, dep, "scale") if "no load signal" in e.message]
    assert len(holding) == 1
    assert holding[0].data["desired"] == 3
    fake.observe_error = OSError("Ray Serve is unreachable")
    clock.advance(30)
    ctl.run_once()  # no observation at all: the count holds too
    assert len(fake.applied) == applies


def test_the_orchestrators_own_autoscaler_gets_bounds_and_no_count(
    store: MetadataStore,
) -> None:
    dep = deploy(store, backend=BackendSpec(kind="ray", address="auto", autoscaler="serve"))
    fake = FakeOrchestrator()
    clock = FakeClock()
    ctl = controller(store, fake, clock)
    load = IngressLoad(clock)
    for _ in range(3):
        fake.report(*serve_replicas(1), load={1: load.hold(2.0, 8)})
        ctl.run_once()
    assert {t.replicas for (t,) in fake.applied} == {None}
    assert events(store, dep, "scale") == []


def _replica_record(n: int, revision: int, state: ReplicaState) -> Replica:
    return Replica(f"r{n}", 1, revision, 0, 0, state, "ray", False, 1.0, 512, 0, None, None, "")


@settings(max_examples=100, deadline=None)
@given(
    low=st.integers(0, 3),
    span=st.integers(0, 4),
    steps=st.lists(
        st.tuples(st.integers(0, 12), st.integers(0, 5), st.booleans()),
        min_size=1,
        max_size=30,
    ),
)
def test_modelyards_autoscaler_on_an_orchestrator_stays_in_bounds_and_says_each_change(
    low: int, span: int, steps: list[tuple[int, int, bool]]
) -> None:
    """Any load, any replica count reported, with or without a signal: the count is
    within [max(min, 1), max], and a ``scale`` event is recorded exactly when it
    changes (or when the signal is first missing)."""
    config = ScalingConfig(
        min_replicas=low, max_replicas=max(low, 1) + span, target_concurrency=1.0
    )
    rev = Revision(1, "m", 1, "models:/m/1", RuntimeSettings(), "ready", "", 100, 0.0, 0)
    dep = Deployment(
        7, "default", "d", config, "active", 1, None, None, (rev,), 1, "u", 0, 0, RAY_OURS
    )
    clock = FakeClock()
    scalers = OrchestratedScalers(clock)
    load = IngressLoad(clock)
    bounds = orchestrated_bounds(config)
    said: int | None = None  # the count the last scale event announced
    for in_flight, running, signal in steps:
        counters = load.hold(2.0, in_flight)
        records = [_replica_record(i, 1, "ready") for i in range(running)]
        p = Pass()
        n = scalers.decide(dep, records, {1: counters} if signal else None, p)[1]
        assert max(low, 1) == bounds.min_replicas <= n <= config.max_replicas
        holding = [e for e in p.events if "no load signal" in e.message]
        decisions = [e for e in p.events if e not in holding]
        assert len(p.events) <= 1
        if decisions:
            assert signal
            assert decisions[0].kind == "scale"
            assert decisions[0].data["desired"] == n != said
        elif holding:
            assert not signal
            assert said is None or n == said
        else:
            assert n == said
        said = n if p.events else said
    scalers.forget(dep.id)
    assert scalers.decide(dep, [], None, Pass()) == {1: bounds.min_replicas}


def test_the_endpoint_is_announced_once(store: MetadataStore) -> None:
    dep = deploy(store)
    fake = FakeOrchestrator()
    ctl = controller(store, fake)
    fake.observed = Observed((), rolled_out=True, endpoint="http://d.ml.svc.cluster.local/")
    ctl.run_once()
    ctl.run_once()
    announced = [e for e in events(store, dep, "orchestrator") if "serving at" in e.message]
    assert len(announced) == 1


def test_stop_closes_the_backends(store: MetadataStore) -> None:
    deploy(store)
    fake = FakeOrchestrator()
    ctl = controller(store, fake)
    ctl.run_once()
    ctl.stop()
    assert fake.closed


# --- the local controller leaves orchestrated deployments alone --------------------------


class NoProcesses:
    """A local replica backend that fails the test if it is asked about any replica."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def prepare(self, project: str, revision: Revision) -> None:
        self.calls.append("prepare")

    def launch(self, replica_id: str, deployment: Deployment, revision: Revision) -> Launched:
        self.calls.append("launch")
        return Launched(4_000_000, 20_000, "fork")

    def alive(self, replica: Replica) -> bool:
        self.calls.append(f"alive {replica.id}")
        return False

    def ready(self, replica: Replica, *, timeout_s: float = 0.5) -> bool:
        self.calls.append(f"ready {replica.id}")
        return False

    def stop(self, replica: Replica, *, grace_s: float) -> bool:
        self.calls.append(f"stop {replica.id}")
        return True

    def failure_reason(self, replica: Replica) -> str:
        return ""

    def close(self) -> None:
        pass


def test_the_local_controller_ignores_orchestrated_deployments(store: MetadataStore) -> None:
    dep = deploy(store, min_replicas=2)
    fake = FakeOrchestrator()
    controller(store, fake).run_once()
    fake.report(pod("d-1-a", 1, "ready"))
    controller(store, fake).run_once()
    local = NoProcesses()
    ctl = DeploymentController(store, local, None, clock=FakeClock(), max_total_replicas=1)
    ctl.adopt()
    ctl.run_once()
    assert ctl.route_table() == []
    ctl.stop(stop_replicas=True)
    assert local.calls == []  # no launch, no probe, and never a signal to pid 0
    assert [r.state for r in store.deployments.replicas(dep.id)] == ["ready"]


# --- pure decisions: targets ------------------------------------------------------------

_REVISION_STATES: list[RevisionState] = ["pending", "ready", "failed", "retired"]
_STRATEGIES: list[Strategy] = ["canary", "rolling"]
_PHASES: list[RolloutPhase] = ["starting", "stepping", "done", "rolled_back"]
_STATUSES: list[Literal["active", "deleting"]] = ["active", "active", "deleting"]
_STATES = st.sampled_from(_REVISION_STATES)


@st.composite
def deployments(draw: st.DrawFn) -> Deployment:
    n = draw(st.integers(1, 5))
    states = draw(st.lists(_STATES, min_size=n, max_size=n))
    raw = draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    revisions = tuple(
        Revision(i + 1, "m", 1, "models:/m/1", RuntimeSettings(), states[i], "", raw[i], 0.0, 0)
        for i in range(n)
    )
    low = draw(st.integers(0, 3))
    config = ScalingConfig(min_replicas=low, max_replicas=draw(st.integers(max(low, 1), 6)))
    backend = draw(
        st.sampled_from(
            [
                K8S,
                BackendSpec(kind="kubernetes", autoscaler="keda"),
                BackendSpec(kind="kubernetes"),
                BackendSpec(kind="ray", address="auto"),
                RAY_OURS,
            ]
        )
    )
    rollout = None
    if n > 1 and draw(st.booleans()):
        strategy = draw(st.sampled_from(_STRATEGIES))
        phase = draw(st.sampled_from(_PHASES))
        rollout = Rollout(strategy, target=n, stable=1, phase=phase)
    status = draw(st.sampled_from(_STATUSES))
    return Deployment(
        1, "default", "d", config, status, 1, None, rollout, revisions, 1, "u", 0, 0, backend
    )


@settings(max_examples=300, deadline=None)
@given(deployments())
def test_targets_follow_the_desired_state(dep: Deployment) -> None:
    targets = targets_for(dep)
    numbers = [t.revision.number for t in targets]
    assert numbers == sorted(set(numbers))
    if dep.status != "active":
        assert targets == ()
        return
    ro = dep.rollout
    in_rollout = {ro.target, ro.stable} if ro is not None and ro.active else set()
    chosen = [
        r
        for r in dep.revisions
        if r.state not in ("failed", "retired") and (r.weight > 0 or r.number in in_rollout)
    ]
    assert numbers == [r.number for r in chosen]
    recorded = sum(r.weight for r in chosen)
    assert sum(t.weight for t in targets) == (0 if recorded == 0 else 100)
    for t in targets:
        assert t.revision.state not in ("failed", "retired")
        if recorded in (0, 100) or t.revision.weight == 0:
            assert t.weight == t.revision.weight
        for u in targets:  # scaling keeps the order of the recorded weights
            if t.revision.weight > u.revision.weight:
                assert t.weight >= u.weight
        assert 0 <= t.min_replicas <= t.max_replicas
        assert t.max_replicas >= dep.config.max_replicas
        if t.revision.state == "pending" or t.weight == 0:
            assert t.min_replicas >= 1
        ours = dep.backend.autoscaler == "modelyard"
        assert (t.replicas is None) != ours
        if t.replicas is not None:
            assert t.min_replicas <= t.replicas <= t.max_replicas
            assert t.replicas >= held_replicas(dep.config) or t.replicas == t.max_replicas


@settings(max_examples=200, deadline=None)
@given(deployments(), st.dictionaries(st.integers(1, 5), st.integers(-2, 12)))
def test_decided_counts_are_kept_within_each_targets_bounds(
    dep: Deployment, decided: dict[int, int]
) -> None:
    plain = targets_for(dep)
    targets = targets_for(dep, decided=decided)
    assert [(t.revision, t.weight, t.min_replicas, t.max_replicas) for t in targets] == [
        (t.revision, t.weight, t.min_replicas, t.max_replicas) for t in plain
    ]
    for t, before in zip(targets, plain, strict=True):
        if t.replicas is None:  # the orchestrator's autoscaler: no count, decided or not
            assert before.replicas is None
            continue
        assert t.replicas >= 1
        assert t.min_replicas <= t.replicas <= t.max_replicas
        n = t.revision.number
        if n not in decided:
            assert t.replicas == before.replicas
        elif max(decided[n], 1) >= t.min_replicas and decided[n] <= t.max_replicas:
            assert t.replicas == max(decided[n], 1)


# --- pure decisions: replica records -----------------------------------------------------

_NAMES = st.text("abcdef-0123456789", min_size=1, max_size=70)
_ALL_REPLICA_STATES: list[ReplicaState] = ["starting", "ready", "draining", "stopped", "failed"]
_REPLICA_STATES = st.sampled_from(_ALL_REPLICA_STATES)


@st.composite
def observations(draw: st.DrawFn) -> tuple[list[Replica], set[str], Observed]:
    names = draw(st.lists(_NAMES, max_size=8, unique=True))
    observed = tuple(
        ObservedReplica(
            name,
            draw(st.integers(1, 2)),
            draw(_REPLICA_STATES),
            reason=draw(st.sampled_from(["", "OOMKilled"])),
        )
        for name in names
    )
    known = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    extra = draw(st.lists(st.text("xyz", min_size=1, max_size=5), max_size=3, unique=True))
    active: list[Replica] = []
    ended: set[str] = set()
    for rid in [record_id(n) for n in known] + [f"gone-{e}" for e in extra]:
        if draw(st.booleans()):
            ended.add(rid)
        else:
            state = draw(st.sampled_from(ACTIVE_REPLICA_STATES))
            active.append(
                Replica(rid, 1, 1, 0, 0, state, "k8s", False, 1.0, 512, 0, None, None, "")
            )
    return active, ended, Observed(observed, rolled_out=False)


def _dep() -> Deployment:
    rev = Revision(1, "m", 1, "models:/m/1", RuntimeSettings(), "ready", "", 100, 0.0, 0)
    return Deployment(
        1, "default", "d", ScalingConfig(), "active", 1, None, None, (rev,), 1, "u", 0, 0, K8S
    )


@settings(max_examples=300, deadline=None)
@given(observations())
def test_records_follow_what_the_orchestrator_reports(
    case: tuple[list[Replica], set[str], Observed],
) -> None:
    active, ended, observed = case
    changes = replica_changes(_dep(), active, ended, observed, now_ms=1_000)
    updated = dict(changes.updated)
    added = {r.id: r for r in changes.added}
    reported = {record_id(o.id): o for o in observed.replicas}
    for r in changes.added:
        assert (r.pid, r.port, r.mode) == (0, 0, "k8s")
        assert len(r.id) <= RECORD_ID_MAX
        assert r.id not in ended
        assert r.id not in {a.id for a in active}
    for rid, o in reported.items():
        if rid in added:
            assert added[rid].state == o.state
        elif rid in ended:
            assert (rid in updated) == (o.state in ACTIVE_REPLICA_STATES)
        else:  # an active record: it takes the reported state
            before = next(r for r in active if r.id == rid)
            assert updated.get(rid, {"state": before.state})["state"] == o.state
    for r in active:
        if r.id not in reported:
            assert updated[r.id]["state"] == "stopped"
            assert r.id in changes.ended
    live = {r.id: r.state for r in changes.live}
    assert live == {rid: o.state for rid, o in reported.items() if o.state in ACTIVE_REPLICA_STATES}
    assert not (changes.ended & changes.reopened)


@given(st.text(min_size=1, max_size=300))
def test_record_ids_fit_the_store_and_are_stable(name: str) -> None:
    rid = record_id(name)
    assert 0 < len(rid) <= RECORD_ID_MAX
    assert rid == record_id(name)
    if len(name) <= RECORD_ID_MAX:
        assert rid == name


def test_a_revision_fails_only_when_all_of_its_replicas_failed_with_a_reason() -> None:
    dep = _dep()
    pending = replace(dep, revisions=(replace(dep.revisions[0], state="pending"),))
    assert failed_revisions(pending, [pod("a", 1, "failed", "OOMKilled")]) == {1: "OOMKilled"}
    assert failed_revisions(pending, [pod("a", 1, "failed", "")]) == {}
    assert failed_revisions(pending, [pod("a", 1, "failed", "x"), pod("b", 1, "ready")]) == {}
    assert failed_revisions(pending, []) == {}
    assert failed_revisions(dep, [pod("a", 1, "failed", "OOMKilled")]) == {}  # ready already


# --- pure decisions: rollouts and back-off ----------------------------------------------


@st.composite
def rollout_cases(draw: st.DrawFn) -> tuple[Rollout, OrchestratedView]:
    steps = (*sorted(set(draw(st.lists(st.integers(1, 99), max_size=3)))), 100)
    phase = draw(st.sampled_from(_PHASES))
    if phase == "stepping" and len(steps) == 1:
        phase = "starting"  # a canary at its last step (100 %) is done, never stepping
    index = draw(st.integers(0, len(steps) - 2)) if phase == "stepping" else -1
    ro = Rollout(
        draw(st.sampled_from(_STRATEGIES)),
        target=2,
        stable=1,
        steps=steps,
        step_index=index,
        step_interval_s=60,
        phase=phase,
        step_started_ms=0,
    )
    view = OrchestratedView(
        now_ms=draw(st.integers(0, 200_000)),
        target_state=draw(st.sampled_from(["pending", "ready", "failed"])),
        target_error=draw(st.sampled_from(["", "ImagePullBackOff"])),
        target_ready=draw(st.integers(0, 3)),
        canary_failure=draw(st.sampled_from([None, "replica x failed: OOMKilled"])),
        rolled_out=draw(st.booleans()),
        target_applied=draw(st.booleans()),
    )
    return ro, view


@settings(max_examples=500, deadline=None)
@given(rollout_cases())
def test_rollout_steps_keep_their_invariants(case: tuple[Rollout, OrchestratedView]) -> None:
    ro, view = case
    step = orchestrated_step(ro, view, "kubernetes")
    if not ro.active:
        assert step.rollout == ro
        assert step.weights is None
        return
    if step.weights is not None:
        assert sum(step.weights.values()) == 100
        assert set(step.weights) <= {1, 2}
    if step.promote:
        assert step.rollout.phase == "done"
        assert step.weights == {2: 100}
    if view.target_state == "failed" or (ro.strategy == "canary" and view.canary_failure):
        assert step.rollout.phase == "rolled_back"
        assert step.weights == {1: 100}
        assert step.message
    if step.rollout.phase == "done" and ro.strategy == "rolling":
        assert view.rolled_out
        assert view.target_applied
        assert view.target_state == "ready"
    if ro.phase == "stepping":
        assert step.rollout.phase != "starting"
    assert not step.pins


@given(st.integers(0, 100))
def test_back_off_grows_and_is_bounded(failures: int) -> None:
    delay = retry_delay_s(failures)
    assert 0 <= delay <= BACKOFF_MAX_S
    assert retry_delay_s(failures + 1) >= delay
    assert (delay == 0) == (failures == 0)


@pytest.mark.parametrize(("low", "high", "held"), [(0, 4, 1), (2, 4, 2), (3, 3, 3)])
def test_held_replicas(low: int, high: int, held: int) -> None:
    assert held_replicas(ScalingConfig(min_replicas=low, max_replicas=high)) == held
