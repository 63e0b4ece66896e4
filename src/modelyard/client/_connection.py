"""Where the client connects and with which token: env first, then the credentials file."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from modelyard.config import Settings
from modelyard.credentials import read_credentials


@dataclass(frozen=True)
class Connection:
    tracking_uri: str
    token: str | None


def _normalize(uri: str) -> str:
    parts = urlsplit(uri.rstrip("/"))
    host = parts.hostname or ""
    if host == "localhost":
        host = "127.0.0.1"
    return f"{parts.scheme}://{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def resolve_connection(settings: Settings) -> Connection:
    """``MODELYARD_TOKEN`` wins; else the token the local server saved for this URI.

    The saved token is sent only to the server it came from, never to another URI.
    """
    uri = settings.tracking_uri.rstrip("/")
    if settings.token is not None:
        return Connection(uri, settings.token.get_secret_value())
    saved = read_credentials(settings.credentials_path)
    if saved and "token" in saved and _normalize(saved.get("tracking_uri", "")) == _normalize(uri):
        return Connection(uri, saved["token"])
    return Connection(uri, None)
