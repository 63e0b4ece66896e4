"""Settings are read once, in the root callback, and reach commands through the context.

Start-up time matters for every command, so nothing heavy is imported here: the HTTP
client (httpx) only when a command connects to a server.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli._output import fail
from modelyard.config import Settings, SettingsError

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def load_settings() -> Settings:
    try:
        return Settings()
    except SettingsError as exc:
        fail(f"invalid settings: {exc}", 2)


def settings_of(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = load_settings()
    return root.obj


ProjectOpt = Annotated[
    str | None, typer.Option("--project", "-p", help="The project (default: MODELYARD_PROJECT).")
]


def project_of(ctx: typer.Context, project: str | None) -> str:
    """``--project`` when given, else ``MODELYARD_PROJECT``."""
    return project or settings_of(ctx).project


def client_of(ctx: typer.Context) -> ModelyardClient:
    from modelyard.client import ModelyardClient, resolve_connection  # httpx: ~0.1 s

    conn = resolve_connection(settings_of(ctx))
    return ModelyardClient(conn.tracking_uri, conn.token)


def parse_duration_s(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``12h``, ``30d``, ``2w`` → seconds."""
    match = _DURATION_RE.match(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r} is not a duration like 3600, 15m, 12h or 30d")
    return float(match.group(1)) * _UNIT_S[match.group(2)]
