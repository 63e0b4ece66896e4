"""The deployment side of the SDK: ``my.deploy(...)`` and friends.

They talk to the server at ``MODELYARD_TRACKING_URI`` like the rest of the SDK and
return the API's JSON document of the deployment.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelyard.client.deploy_rest import DeploymentJson
from modelyard.tracking import fluent


def deploy(
    name: str,
    model: str,
    *,
    min_replicas: int = 0,
    max_replicas: int = 4,
    target_concurrency: float = 4.0,
    idle_grace_s: float = 30.0,
    **scaling: object,
) -> DeploymentJson:
    """Create deployment ``name`` serving ``model`` (``models:/churn@production``).

    Extra keyword arguments are scaling settings (``policy``, ``prewarm``,
    ``request_timeout_s`` …). Returns the deployment, whose ``endpoint`` takes requests.
    """
    session = fluent._get()
    settings = {
        "min_replicas": min_replicas,
        "max_replicas": max_replicas,
        "target_concurrency": target_concurrency,
        "idle_grace_s": idle_grace_s,
        **scaling,
    }
    return session.client.create_deployment(session.settings.project, name, model, scaling=settings)


def get_deployment(name: str) -> DeploymentJson:
    """The deployment's revisions, traffic, replicas and endpoint."""
    session = fluent._get()
    return session.client.get_deployment(session.settings.project, name)


def update_deployment(name: str, model: str | None = None, **options: object) -> DeploymentJson:
    """Roll out ``model`` (``strategy``, ``steps`` … as keywords) and/or change scaling
    (``scaling={...}``)."""
    session = fluent._get()
    return session.client.update_deployment(
        session.settings.project,
        name,
        model=model,
        **options,  # type: ignore[arg-type]
    )


def set_traffic(name: str, weights: Mapping[int, int]) -> DeploymentJson:
    """Split traffic by model version, e.g. ``{3: 90, 4: 10}``."""
    session = fluent._get()
    return session.client.set_traffic(session.settings.project, name, weights)


def rollback(name: str) -> DeploymentJson:
    """Back to the previous stable revision."""
    session = fluent._get()
    return session.client.rollback_deployment(session.settings.project, name)


def delete_deployment(name: str) -> DeploymentJson:
    """Drain and remove the deployment."""
    session = fluent._get()
    return session.client.delete_deployment(session.settings.project, name)
