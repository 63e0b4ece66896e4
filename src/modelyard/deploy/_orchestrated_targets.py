"""Desired state → what an orchestrator should run: a pure function, and its helpers.

:func:`targets_for` turns a deployment's revisions, weights, rollout and scaling bounds
into the :class:`~modelyard.deploy._backend.RevisionTarget` list the orchestrated
controller (:mod:`modelyard.deploy._orchestrated`) hands to
:meth:`~modelyard.deploy._backend.OrchestratorBackend.apply`. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from modelyard.core.backends import BackendSpec
from modelyard.core.deployments import Deployment, ScalingConfig
from modelyard.deploy._backend import RevisionTarget

# Autoscalers that belong to the orchestrator: modelyard gives bounds, not a count.
ORCHESTRATOR_AUTOSCALERS = frozenset({"hpa", "keda", "knative", "serve"})
# Failed calls to an orchestrator are retried after 2, 4, 8 … seconds, at most 5 minutes.
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 300.0


def autoscaler_of(spec: BackendSpec, min_replicas: int) -> str:
    """The autoscaler a deployment uses: the one it names, else the backend's default
    (as :meth:`BackendSpec.resolved` picks it, without refusing ``hpa`` at zero: the
    service already refused that when the deployment was written)."""
    if spec.autoscaler:
        return spec.autoscaler
    if spec.kind == "kubernetes":
        return "keda" if min_replicas == 0 else "hpa"
    if spec.kind == "ray":
        return "serve"
    return "modelyard"


def modelyard_scales(spec: BackendSpec, min_replicas: int) -> bool:
    """Whether modelyard's own autoscaler decides the replica counts (``--autoscaler
    modelyard``, Ray only) rather than the orchestrator's."""
    return autoscaler_of(spec, min_replicas) not in ORCHESTRATOR_AUTOSCALERS


def held_replicas(config: ScalingConfig) -> int:
    """The count modelyard's own autoscaler keeps on an orchestrator before it has
    decided (no load signal yet): ``min_replicas``, and at least one.

    Never zero: on Ray the ingress forwards a request straight to its revision's
    replicas, and no part of modelyard holds it while one starts (the local gateway
    does), so a revision at zero would have nothing to wake it with.
    """
    return min(max(config.min_replicas, 1), config.max_replicas)


def targets_for(
    dep: Deployment,
    spec: BackendSpec | None = None,
    decided: Mapping[int, int] | None = None,
) -> tuple[RevisionTarget, ...]:
    """What the orchestrator should run for ``dep``, by revision number.

    Revisions with traffic, plus an active rollout's target and stable revisions (at
    weight 0 when they have none: a canary's target until its first step, a rolling
    update's stable until the orchestrator has rolled the target out, so the old
    replicas go only once the new ones run); never a failed or retired one, and nothing
    unless the deployment is active.

    Weights are the recorded ones; if the revisions left out took traffic (a failed one
    whose traffic was not moved yet), the rest are scaled to sum to 100 again, as the
    :class:`RevisionTarget` contract asks. Bounds come from ``dep.config``; a revision
    not proven yet (pending) or without traffic keeps at least one replica. ``replicas``
    is None when the orchestrator's autoscaler decides; with modelyard's own, it is the
    count ``decided`` gives the revision (by the orchestrated controller's autoscalers),
    else :func:`held_replicas`, within the target's bounds and never below one.
    ``spec`` (the deployment's own backend when None) picks the autoscaler: ``deploy
    render`` renders for a backend the deployment may not use.
    """
    if dep.status != "active":
        return ()
    config = dep.config
    backend = spec if spec is not None else dep.backend
    ours = modelyard_scales(backend, config.min_replicas)
    counts = decided or {}
    ro = dep.rollout
    in_rollout = {ro.target, ro.stable} if ro is not None and ro.active else set()
    chosen = [
        rev
        for rev in sorted(dep.revisions, key=lambda r: r.number)
        if rev.state not in ("failed", "retired") and (rev.weight > 0 or rev.number in in_rollout)
    ]
    weights = normalized({rev.number: max(rev.weight, 0) for rev in chosen})
    targets: list[RevisionTarget] = []
    for rev in chosen:
        weight = weights[rev.number]
        low = config.min_replicas
        if rev.state == "pending" or weight == 0:
            low = max(low, 1)
        high = max(config.max_replicas, low)
        replicas = None
        if ours:
            wanted = counts.get(rev.number, held_replicas(config))
            replicas = min(max(wanted, low, 1), high)
        targets.append(RevisionTarget(rev, weight, low, high, replicas))
    return tuple(targets)


def normalized(weights: dict[int, int]) -> dict[int, int]:
    """``weights`` unchanged when they sum to 0 or 100, else scaled to sum to 100
    (largest remainder; ties to the lower revision number)."""
    total = sum(weights.values())
    if total in (0, 100):
        return dict(weights)
    exact = {n: w * 100 / total for n, w in weights.items()}
    out = {n: int(x) for n, x in exact.items()}
    short = 100 - sum(out.values())
    for n in sorted(exact, key=lambda n: (-(exact[n] - out[n]), n))[:short]:
        out[n] += 1
    return out


def describe_targets(targets: Sequence[RevisionTarget]) -> str:
    """``revision 2 (10%, 1-4 replicas), revision 1 (90%, 1-4 replicas)`` for events."""
    if not targets:
        return "nothing (no revision to run)"
    parts = []
    for t in targets:
        count = (
            f"{t.replicas} replica(s)"
            if t.replicas is not None
            else f"{t.min_replicas}-{t.max_replicas} replicas"
        )
        parts.append(f"revision {t.revision.number} ({t.weight}%, {count})")
    return ", ".join(parts)


def takes_all_traffic(targets: Sequence[RevisionTarget], revision: int) -> bool:
    """Whether ``revision`` is in ``targets`` at 100 %."""
    return any(t.revision.number == revision and t.weight == 100 for t in targets)


def retry_delay_s(failures: int) -> float:
    """Seconds to wait after ``failures`` failed calls in a row: doubling from
    :data:`BACKOFF_BASE_S`, at most :data:`BACKOFF_MAX_S` (0 before any failure)."""
    if failures <= 0:
        return 0.0
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2.0 ** min(failures - 1, 32))
