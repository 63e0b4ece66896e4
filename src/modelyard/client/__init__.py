"""The Python REST client used by the CLI and by users."""

from __future__ import annotations

from modelyard.client._connection import Connection, resolve_connection
from modelyard.client._rest import ModelyardClient
from modelyard.config import Settings

__all__ = ["Connection", "ModelyardClient", "connect", "resolve_connection"]


def connect(settings: Settings | None = None) -> ModelyardClient:
    """A client for ``MODELYARD_TRACKING_URI`` with the token resolved as documented."""
    conn = resolve_connection(settings or Settings())
    return ModelyardClient(conn.tracking_uri, conn.token)
