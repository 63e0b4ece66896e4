"""Steps 4 and 5 (first half): register the best run's model and deploy it.

The deployment is created with ``min_replicas=0`` and scaling settings short enough
that the scale-ups and the return to zero happen within the walk-through. When it exists
already (an earlier run), the new model version is rolled out to it instead, so running
the quickstart again is an update, not an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import Conflict, NotFound
from modelyard.quickstart._result import StepError

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient
    from modelyard.core.models import ModelVersion

MODEL_NAME = "quickstart-model"
ALIAS = "production"
DEPLOYMENT = "quickstart-api"
MAX_REPLICAS = 4
SCALING: dict[str, object] = {
    "min_replicas": 0,
    "target_concurrency": 4,
    "idle_grace_s": 5,
    "stable_window_s": 10,
    "panic_window_s": 2,
    "tick_s": 1,
}
READY_TIMEOUT_S = 120.0
GONE_TIMEOUT_S = 60.0
POLL_S = 0.25

Deployment = dict[str, Any]


@dataclass(frozen=True)
class Started:
    """A deployment asked to serve the new version: created, or a rollout begun."""

    deployment: Deployment
    created: bool
    revision: int

    @property
    def endpoint(self) -> str:
        return str(self.deployment["endpoint"])


def register_best(run_id: str) -> ModelVersion:
    """Register the run's ``model`` as the next version and point ``production`` at it."""
    import modelyard as my

    version: ModelVersion = my.register_model(f"runs:/{run_id}/model", MODEL_NAME)
    my.set_alias(MODEL_NAME, ALIAS, version.version)
    return version


def start_deployment(client: ModelyardClient, project: str, max_replicas: int) -> Started:
    """Create ``quickstart-api`` serving ``models:/quickstart-model@production``, or roll
    the version the alias names now out to the existing deployment.

    Raises:
        StepError: the deployment is busy with another rollout.
    """
    model = f"models:/{MODEL_NAME}@{ALIAS}"
    scaling = {**SCALING, "max_replicas": max_replicas}
    existing = _existing(client, project)
    if existing is None:
        dep = client.create_deployment(project, DEPLOYMENT, model, scaling=scaling)
        return Started(dep, True, 1)
    rollout = existing["rollout"]
    if rollout is not None and rollout["phase"] in ("starting", "stepping"):
        client.rollback_deployment(project, DEPLOYMENT)  # left by an interrupted run
    try:
        dep = client.update_deployment(
            project, DEPLOYMENT, model=model, strategy="rolling", scaling=scaling
        )
    except Conflict as exc:
        raise StepError(f"{DEPLOYMENT} is busy: {exc}") from None
    return Started(dep, False, int(dep["rollout"]["target"]))


def _existing(client: ModelyardClient, project: str) -> Deployment | None:
    """The deployment, if it exists and is not being deleted (that is waited out)."""
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while True:
        try:
            dep = client.get_deployment(project, DEPLOYMENT)
        except NotFound:
            return None
        if dep["status"] != "deleting":
            return dep
        if time.monotonic() > deadline:
            raise StepError(f"{DEPLOYMENT} is still being deleted after {GONE_TIMEOUT_S:g} s")
        time.sleep(POLL_S)


def _revision(dep: Deployment, number: int) -> dict[str, Any]:
    for rev in dep["revisions"]:
        if int(rev["number"]) == number:
            return dict(rev)
    raise StepError(f"{DEPLOYMENT} has no revision {number}")


def wait_serving(client: ModelyardClient, project: str, target: int, version: int) -> Deployment:
    """Wait until revision ``target`` is ready and takes all the traffic.

    Raises:
        StepError: it failed to load, its rollout ended otherwise, it serves another
            model version (the alias moved meanwhile), or it took too long.
    """

    def serving(dep: Deployment) -> bool:
        rev = _revision(dep, target)
        if int(rev["model_version"]) != version:
            raise StepError(f"revision {target} serves version {rev['model_version']}, "
                            f"not {version}: did {ALIAS} move meanwhile?")  # fmt: skip
        if rev["state"] == "failed":
            raise StepError(f"revision {target} failed to load: {rev['error'] or 'no reason'}")
        rollout = dep["rollout"]
        if rollout is not None and int(rollout["target"]) == target:
            if rollout["phase"] in ("rolled_back", "aborted"):
                raise StepError(f"the rollout of revision {target} ended {rollout['phase']}")
            if rollout["phase"] != "done":
                return False
        return bool(rev["state"] == "ready" and dep["traffic"].get(str(target)) == 100)

    what = f"revision {target} to be ready (is the server running with --no-gateway?)"
    return wait_for(client, project, serving, READY_TIMEOUT_S, what)


def wait_for(
    client: ModelyardClient,
    project: str,
    check: Callable[[Deployment], bool],
    timeout_s: float,
    what: str,
    poll_s: float = POLL_S,
) -> Deployment:
    """Poll the deployment until ``check`` holds.

    Raises:
        StepError: not within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        dep = client.get_deployment(project, DEPLOYMENT)
        if check(dep):
            return dep
        if time.monotonic() > deadline:
            raise StepError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(poll_s)


def active_replicas(dep: Deployment) -> int:
    """Replicas serving or about to (standbys left out)."""
    return sum(
        1 for r in dep["replicas"] if r["state"] in ("starting", "ready") and not r["standby"]
    )


def ready_replicas(dep: Deployment) -> int:
    return sum(1 for r in dep["replicas"] if r["state"] == "ready" and not r["standby"])


def running_replicas(dep: Deployment) -> int:
    """Replicas with a process: starting, ready or draining (standbys included)."""
    return sum(1 for r in dep["replicas"] if r["state"] in ("starting", "ready", "draining"))


def last_event_id(client: ModelyardClient, project: str) -> int:
    """The id of the deployment's newest event (0 if none or no deployment yet)."""
    last = 0
    while True:
        try:
            page = client.deployment_events(project, DEPLOYMENT, after=last, limit=10_000)
        except NotFound:
            return 0
        if not page:
            return last
        last = int(page[-1]["id"])
