"""Rollouts on an orchestrator as a pure function: ``orchestrated_step(rollout, view)``.

The orchestrator runs and replaces the replicas; modelyard still owns the traffic split
and the rollout record. Unlike :func:`~modelyard.deploy._rollout.advance` (local
replicas behind the gateway), the gate is replica health only: Kubernetes reports no
request counts or latencies, and the Ray ingress's counts (``Observed.load``) feed only
the autoscaler so far. The step type is the local one,
:class:`~modelyard.deploy._rollout.RolloutStep` (``pins`` stay empty).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from modelyard.core.deployments import RevisionState, Rollout
from modelyard.deploy._rollout import RolloutStep, canary_step, end_rollout


@dataclass(frozen=True)
class OrchestratedView:
    """What the controller saw of a rollout on an orchestrator this pass.

    Attributes:
        now_ms: the controller's clock.
        target_state: the target revision's state.
        target_error: its error, when it failed.
        target_ready: ready replicas of the target the orchestrator reports.
        canary_failure: why a replica of the target failed, if one did.
        rolled_out: :attr:`Observed.rolled_out` of this pass's observation.
        target_applied: the last successful apply gave the target 100 % (so
            ``rolled_out`` speaks of the target's rollout, not of an older state).
    """

    now_ms: int
    target_state: RevisionState
    target_error: str = ""
    target_ready: int = 0
    canary_failure: str | None = None
    rolled_out: bool = False
    target_applied: bool = False


def orchestrated_step(rollout: Rollout, view: OrchestratedView, kind: str) -> RolloutStep:
    """The next step of an active rollout whose replicas ``kind`` runs.

    The gate is replica health only (see the module docstring), so there is no
    error-rate or p99 window as for local replicas.

    - A failed target revision ends the rollout ``rolled_back`` (traffic to stable).
    - ``canary``: once the target has a ready replica, traffic walks ``steps``, one step
      every ``step_interval_s``; any failed replica of the target rolls back; the last
      step (100 %) promotes it.
    - ``rolling``: the target takes 100 % at once and ``kind`` replaces the replicas
      (Kubernetes RollingUpdate, Serve redeploy; the stable revision stays among the
      targets, at 0 %, until then); the rollout is done, and the target promoted, when
      the orchestrator reports the state giving the target 100 % rolled out and the
      target ready.
    """
    if not rollout.active:
        return RolloutStep(rollout)
    if view.target_state == "failed":
        return end_rollout(
            rollout,
            "rolled_back",
            f"revision {rollout.target} failed: {view.target_error or 'it did not start'}; "
            f"traffic stays on revision {rollout.stable}",
        )
    if rollout.strategy == "rolling":
        return _rolling(rollout, view, kind)
    if view.canary_failure is not None:
        return end_rollout(rollout, "rolled_back", f"rollback: {view.canary_failure}")
    if rollout.phase == "starting":
        if view.target_ready < 1:
            return RolloutStep(rollout)
        return canary_step(rollout, 0, view.now_ms, "revision ready")
    elapsed_s = (view.now_ms - rollout.step_started_ms) / 1000.0
    if elapsed_s < rollout.step_interval_s:
        return RolloutStep(rollout)
    why = (
        f"step {rollout.step_index + 1} passed (no replica of revision {rollout.target} "
        f"failed in {rollout.step_interval_s:g}s)"
    )
    nxt = min(rollout.step_index + 1, len(rollout.steps) - 1)  # the last step is 100 %
    return canary_step(rollout, nxt, view.now_ms, why)


def _rolling(rollout: Rollout, view: OrchestratedView, kind: str) -> RolloutStep:
    if rollout.phase == "starting":
        started = replace(rollout, phase="stepping", step_index=0, step_started_ms=view.now_ms)
        return RolloutStep(
            started,
            weights={rollout.target: 100},
            message=f"rolling update: revision {rollout.target} takes 100%; {kind} replaces "
            f"the replicas of revision {rollout.stable}",
            reset_window=True,
        )
    if view.rolled_out and view.target_applied and view.target_state == "ready":
        done = replace(rollout, phase="done", step_started_ms=view.now_ms)
        return RolloutStep(
            done,
            weights={rollout.target: 100},
            promote=True,
            message=f"rolling update done: {kind} rolled out revision {rollout.target}, "
            "which serves 100%",
        )
    return RolloutStep(rollout)
