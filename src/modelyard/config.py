"""One typed settings object, read once at the edge (CLI, server start) and passed down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORT = 5005
DEFAULT_TRACKING_URI = f"http://127.0.0.1:{DEFAULT_PORT}"
DEFAULT_GATEWAY_PORT = 5006


class Settings(BaseSettings):
    """modelyard's settings, from ``MODELYARD_*`` environment variables.

    ``store_uri`` and ``artifact_uri`` default to places under ``home`` so a laptop needs
    no set-up: ``sqlite:///$MODELYARD_HOME/modelyard.db`` and
    ``file://$MODELYARD_HOME/artifacts``.
    """

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=lambda: Path.home() / ".modelyard")
    store_uri: str = ""
    artifact_uri: str = ""
    tracking_uri: str = DEFAULT_TRACKING_URI
    token: SecretStr | None = None
    auth_enabled: bool = True
    project: str = "default"
    gateway_port: int = Field(default=DEFAULT_GATEWAY_PORT, ge=1, le=65535)
    max_replicas: int = Field(default=0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _expand_home(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("home") not in (None, ""):
            data = {**data, "home": Path(str(data["home"])).expanduser()}
        return data

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        home = self.home.expanduser().resolve()
        object.__setattr__(self, "home", home)
        if not self.store_uri:
            object.__setattr__(self, "store_uri", f"sqlite:///{home / 'modelyard.db'}")
        if not self.artifact_uri:
            object.__setattr__(self, "artifact_uri", f"file://{home / 'artifacts'}")
        return self

    @property
    def replica_limit(self) -> int:
        """``MODELYARD_MAX_REPLICAS``, or twice the CPU count when unset (0)."""
        return self.max_replicas or 2 * (os.cpu_count() or 1)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def credentials_path(self) -> Path:
        """Where the server writes the first admin token (mode 0600)."""
        return self.home / "credentials"

    def masked(self) -> dict[str, str]:
        """The resolved values for display, with secrets and URI passwords masked."""
        return {
            "MODELYARD_HOME": str(self.home),
            "MODELYARD_STORE_URI": mask_uri_password(self.store_uri),
            "MODELYARD_ARTIFACT_URI": mask_uri_password(self.artifact_uri),
            "MODELYARD_TRACKING_URI": self.tracking_uri,
            "MODELYARD_TOKEN": mask_secret(self.token.get_secret_value() if self.token else None),
            "MODELYARD_AUTH_ENABLED": str(self.auth_enabled).lower(),
            "MODELYARD_PROJECT": self.project,
            "MODELYARD_GATEWAY_PORT": str(self.gateway_port),
            "MODELYARD_MAX_REPLICAS": str(self.replica_limit),
        }


def mask_secret(value: str | None) -> str:
    """``myt_ab…`` style: enough to recognise a token, never enough to use it."""
    if not value:
        return "(not set)"
    return value[:6] + "…" + "*" * 8


def mask_uri_password(uri: str) -> str:
    """Replace the password in ``scheme://user:password@host/...`` with ``***``."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
