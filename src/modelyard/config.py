"""One typed settings object, read once at the edge (CLI, server start) and passed down.

Plain Python on purpose: every ``modelyard`` command reads the settings first, and
pydantic-settings alone took ~0.2 s (~0.4 s without cached bytecode) to import, which
was a third of the start-up of a command such as ``modelyard data add``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORT = 5005
DEFAULT_TRACKING_URI = f"http://127.0.0.1:{DEFAULT_PORT}"
DEFAULT_GATEWAY_PORT = 5006
ENV_PREFIX = "MODELYARD_"
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


class SettingsError(ValueError):
    """Invalid settings; ``problems`` holds (environment variable, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))
        self.problems = problems


class Secret:
    """A string that does not show itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false, 1/0, yes/no, on/off), got {value!r}")


def _int(low: int, high: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        try:
            number = int(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ValueError(f"expected an integer, got {value!r}") from None
        if number < low or (high is not None and number > high):
            bounds = f"between {low} and {high}" if high is not None else f">= {low}"
            raise ValueError(f"must be {bounds}, got {number}")
        return number

    return parse


def _secret(value: Any) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(_text(value))


def _path(value: Any) -> Path:
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"expected a path, got {type(value).__name__}")
    return Path(value).expanduser()


# Field name → how a value (an environment string, or a constructor argument) is parsed.
_FIELDS: dict[str, Callable[[Any], Any]] = {
    "home": _path,
    "store_uri": _text,
    "artifact_uri": _text,
    "tracking_uri": _text,
    "token": _secret,
    "auth_enabled": _bool,
    "project": _text,
    "gateway_port": _int(1, 65535),
    "max_replicas": _int(0),
    "blob_fsync": _bool,
    "monitor_interval_s": _int(1, 3600),
    "otel_endpoint": _text,
    "prices": _text,
    "budget_interval_s": _int(1, 86400),
    "schedule_interval_s": _int(1, 3600),
    "pipelines_dir": _path,
}


class Settings:
    """modelyard's settings, from ``MODELYARD_*`` environment variables.

    Arguments given to the constructor win over the environment (names as the fields,
    e.g. ``Settings(home=path)``). Environment names are matched case-insensitively.

    ``store_uri`` and ``artifact_uri`` default to places under ``home`` so a laptop needs
    no set-up: ``sqlite:///$MODELYARD_HOME/modelyard.db`` and
    ``file://$MODELYARD_HOME/artifacts``. ``blob_fsync`` (``MODELYARD_BLOB_FSYNC``,
    default false) makes a ``file://`` artifact store flush every blob to disk before
    acknowledging it (docs/data.md explains the trade-off). ``monitor_interval_s``
    (default 10) is the monitor loop's period; ``otel_endpoint`` (default empty: tracing
    off) is the OTLP/HTTP endpoint traces go to. ``prices`` (``MODELYARD_PRICES``) names a
    price-catalog file overriding the defaults (else ``$MODELYARD_HOME/prices.toml`` if it
    exists); ``budget_interval_s`` (default 60) is how often budgets are evaluated.
    ``schedule_interval_s`` (default 15) is how often the server looks for due pipeline
    schedules; ``pipelines_dir`` (default ``$MODELYARD_HOME/pipelines``) is the only
    folder whose pipeline files schedules may run.

    Instances are frozen; :meth:`replace` makes a changed copy.

    Raises:
        SettingsError: a value that does not parse (all problems at once).
    """

    home: Path
    store_uri: str
    artifact_uri: str
    tracking_uri: str
    token: Secret | None
    auth_enabled: bool
    project: str
    gateway_port: int
    max_replicas: int
    blob_fsync: bool
    monitor_interval_s: int
    otel_endpoint: str
    prices: str
    budget_interval_s: int
    schedule_interval_s: int
    pipelines_dir: Path

    def __init__(self, **values: Any) -> None:
        _check_known(values)
        env = {k.lower(): v for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}
        raw: dict[str, Any] = {}
        for name in _FIELDS:
            if name in values:
                raw[name] = values[name]
            elif (found := env.get((ENV_PREFIX + name).lower())) is not None:
                raw[name] = found
        self._assign(_parse(raw))

    def _assign(self, parsed: Mapping[str, Any]) -> None:
        home = parsed.get("home") or Path.home() / ".modelyard"
        home = Path(home).expanduser().resolve()
        fields: dict[str, Any] = {
            "home": home,
            "store_uri": parsed.get("store_uri") or f"sqlite:///{home / 'modelyard.db'}",
            "artifact_uri": parsed.get("artifact_uri") or f"file://{home / 'artifacts'}",
            "tracking_uri": parsed.get("tracking_uri", DEFAULT_TRACKING_URI),
            "token": parsed.get("token"),
            "auth_enabled": parsed.get("auth_enabled", True),
            "project": parsed.get("project", "default"),
            "gateway_port": parsed.get("gateway_port", DEFAULT_GATEWAY_PORT),
            "max_replicas": parsed.get("max_replicas", 0),
            "blob_fsync": parsed.get("blob_fsync", False),
            "monitor_interval_s": parsed.get("monitor_interval_s", 10),
            "otel_endpoint": parsed.get("otel_endpoint", ""),
            "prices": parsed.get("prices", ""),
            "budget_interval_s": parsed.get("budget_interval_s", 60),
            "schedule_interval_s": parsed.get("schedule_interval_s", 15),
            "pipelines_dir": Path(parsed.get("pipelines_dir") or home / "pipelines")
            .expanduser()
            .resolve(),
        }
        self.__dict__.update(fields)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (parsed like constructor arguments)."""
        _check_known(changes)
        copy = object.__new__(Settings)
        copy._assign({**self.__dict__, **_parse(changes)})
        return copy

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Settings are frozen: cannot set {name!r}; use replace()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Settings are frozen: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and other.__dict__ == self.__dict__

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.items()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"Settings({fields})"

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
            "MODELYARD_BLOB_FSYNC": str(self.blob_fsync).lower(),
            "MODELYARD_MONITOR_INTERVAL_S": str(self.monitor_interval_s),
            "MODELYARD_OTEL_ENDPOINT": mask_uri_password(self.otel_endpoint),
            "MODELYARD_PRICES": self.prices,
            "MODELYARD_BUDGET_INTERVAL_S": str(self.budget_interval_s),
            "MODELYARD_SCHEDULE_INTERVAL_S": str(self.schedule_interval_s),
            "MODELYARD_PIPELINES_DIR": str(self.pipelines_dir),
        }


def _check_known(names: Mapping[str, Any]) -> None:
    unknown = sorted(set(names) - set(_FIELDS))
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(unknown)}")


def _parse(raw: Mapping[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for name, value in raw.items():
        try:
            parsed[name] = _FIELDS[name](value)
        except ValueError as exc:
            problems.append((ENV_PREFIX + name.upper(), str(exc)))
    if problems:
        raise SettingsError(problems)
    return parsed


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
