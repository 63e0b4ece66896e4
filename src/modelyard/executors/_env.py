"""What a worker needs to log to the same server as the driver that submitted it."""

from __future__ import annotations

from modelyard.client import resolve_connection
from modelyard.config import Settings


def worker_env(settings: Settings) -> dict[str, str]:
    """Tracking URI, token and project for a worker process or Ray task.

    The token is resolved here (env or the saved credentials) so a worker on another
    node, without this machine's credentials file, still authenticates.
    """
    connection = resolve_connection(settings)
    env = {
        "MODELYARD_TRACKING_URI": connection.tracking_uri,
        "MODELYARD_PROJECT": settings.project,
        "MODELYARD_HOME": str(settings.home),
    }
    if connection.token is not None:
        env["MODELYARD_TOKEN"] = connection.token
    return env
