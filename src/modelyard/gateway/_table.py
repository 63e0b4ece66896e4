"""The route table the controller pushes: frozen values and strict JSON parsing.

Parsing rejects anything it does not understand (unknown keys, wrong types, ``true`` for
an integer, out-of-range numbers) with :class:`~modelyard.core.errors.InvalidInput`
whose message names the field by its JSON path, e.g. ``deployments[0].revisions[1].weight``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from modelyard.core.errors import InvalidInput

# A path segment that needs no escaping; "-" alone starts the control API (``/-/``).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}")


@dataclass(frozen=True)
class ReplicaRoute:
    """A ready replica process: ``id`` names it in stats and the response header."""

    id: str
    host: str
    port: int


@dataclass(frozen=True)
class RevisionRoute:
    """One revision of a deployment and its ready replicas.

    Attributes:
        revision: The revision number (``x-modelyard-revision``).
        weight: Percent of primary traffic (0..100).
        shadow_percent: Percent of requests copied to this revision as shadow traffic.
        replicas: The ready, routable replicas; empty means requests are held.
    """

    revision: int
    weight: int
    shadow_percent: float
    replicas: tuple[ReplicaRoute, ...]


@dataclass(frozen=True)
class DeploymentRoute:
    """A deployment served under ``/<name>/``.

    Attributes:
        name: The first path segment.
        revisions: The revisions; their weights sum to 100.
        request_timeout_s: From arrival at the gateway to the answer (else 504).
        queue_limit: Requests held at most while no replica is ready (else 503).
        queue_timeout_s: The longest a request is held (else 503).
        shadow_queue_limit: Shadow requests outstanding at most (else dropped).
    """

    name: str
    revisions: tuple[RevisionRoute, ...]
    request_timeout_s: float = 60.0
    queue_limit: int = 100
    queue_timeout_s: float = 30.0
    shadow_queue_limit: int = 64


@dataclass(frozen=True)
class RouteTable:
    """Every deployment the gateway routes, as of ``version``."""

    version: int
    deployments: dict[str, DeploymentRoute] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: object) -> RouteTable:
        """Parse the controller's JSON form.

        Raises:
            InvalidInput: a field is missing, unknown, of the wrong type or out of range;
                the message names it.
        """
        top = _object(obj, "route table", {"version", "deployments"}, {"version"})
        version = _int(top["version"], "version", 0, None)
        items = _list(top.get("deployments", []), "deployments")
        deployments: dict[str, DeploymentRoute] = {}
        for i, item in enumerate(items):
            route = _deployment(item, f"deployments[{i}]")
            if route.name in deployments:
                raise InvalidInput(f"deployments[{i}].name: {route.name!r} appears twice")
            deployments[route.name] = route
        return cls(version, deployments)

    def to_json(self) -> dict[str, object]:
        """The JSON form :meth:`from_json` reads."""
        return {
            "version": self.version,
            "deployments": [_deployment_json(d) for d in self.deployments.values()],
        }


_DEPLOYMENT_KEYS = {
    "name",
    "revisions",
    "request_timeout_s",
    "queue_limit",
    "queue_timeout_s",
    "shadow_queue_limit",
}


def _deployment(obj: object, where: str) -> DeploymentRoute:
    data = _object(obj, where, _DEPLOYMENT_KEYS, {"name", "revisions"})
    name = data["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{where}.name: {name!r} is not a deployment name "
            "(1-128 letters, digits, '.', '_', '~', '-', not starting with a symbol)"
        )
    revisions: list[RevisionRoute] = []
    for j, item in enumerate(_list(data["revisions"], f"{where}.revisions")):
        revision = _revision(item, f"{where}.revisions[{j}]")
        if any(r.revision == revision.revision for r in revisions):
            raise InvalidInput(
                f"{where}.revisions[{j}].revision: {revision.revision} appears twice"
            )
        revisions.append(revision)
    total = sum(r.weight for r in revisions)
    if total != 100:
        raise InvalidInput(f"{where}.revisions: the weights sum to {total}, not 100")
    seen: set[str] = set()
    for j, revision in enumerate(revisions):
        for k, replica in enumerate(revision.replicas):
            if replica.id in seen:
                place = f"{where}.revisions[{j}].replicas[{k}].id"
                raise InvalidInput(f"{place}: {replica.id!r} appears twice")
            seen.add(replica.id)
    return DeploymentRoute(
        name=name,
        revisions=tuple(revisions),
        request_timeout_s=_seconds(
            data.get("request_timeout_s", 60.0), f"{where}.request_timeout_s"
        ),
        queue_limit=_int(data.get("queue_limit", 100), f"{where}.queue_limit", 0, None),
        queue_timeout_s=_seconds(data.get("queue_timeout_s", 30.0), f"{where}.queue_timeout_s"),
        shadow_queue_limit=_int(
            data.get("shadow_queue_limit", 64), f"{where}.shadow_queue_limit", 0, None
        ),
    )


def _revision(obj: object, where: str) -> RevisionRoute:
    keys = {"revision", "weight", "shadow_percent", "replicas"}
    data = _object(obj, where, keys, {"revision", "weight", "replicas"})
    replicas = tuple(
        _replica(item, f"{where}.replicas[{k}]")
        for k, item in enumerate(_list(data["replicas"], f"{where}.replicas"))
    )
    shadow = _number(data.get("shadow_percent", 0), f"{where}.shadow_percent")
    if not 0.0 <= shadow <= 100.0:
        raise InvalidInput(f"{where}.shadow_percent: {shadow} is not in 0..100")
    return RevisionRoute(
        revision=_int(data["revision"], f"{where}.revision", 0, None),
        weight=_int(data["weight"], f"{where}.weight", 0, 100),
        shadow_percent=shadow,
        replicas=replicas,
    )


def _replica(obj: object, where: str) -> ReplicaRoute:
    data = _object(obj, where, {"id", "host", "port"}, {"id", "host", "port"})
    for key in ("id", "host"):
        value = data[key]
        if not isinstance(value, str) or not value or not value.isprintable() or " " in value:
            raise InvalidInput(f"{where}.{key}: {value!r} is not a non-empty printable string")
    return ReplicaRoute(
        id=str(data["id"]),
        host=str(data["host"]),
        port=_int(data["port"], f"{where}.port", 1, 65535),
    )


def _deployment_json(route: DeploymentRoute) -> dict[str, object]:
    return {
        "name": route.name,
        "request_timeout_s": route.request_timeout_s,
        "queue_limit": route.queue_limit,
        "queue_timeout_s": route.queue_timeout_s,
        "shadow_queue_limit": route.shadow_queue_limit,
        "revisions": [
            {
                "revision": r.revision,
                "weight": r.weight,
                "shadow_percent": r.shadow_percent,
                "replicas": [{"id": p.id, "host": p.host, "port": p.port} for p in r.replicas],
            }
            for r in route.revisions
        ],
    }


# ---- typed field readers ------------------------------------------------------------


def _object(obj: object, where: str, allowed: set[str], required: set[str]) -> Mapping[str, object]:
    if not isinstance(obj, dict):
        raise InvalidInput(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for key in obj:
        if key not in allowed:
            raise InvalidInput(f"{_join(where, str(key))}: unknown field")
    for key in sorted(required):
        if key not in obj:
            raise InvalidInput(f"{_join(where, key)}: missing")
    return obj


def _join(where: str, key: str) -> str:
    return key if where == "route table" else f"{where}.{key}"


def _list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise InvalidInput(f"{where}: expected a JSON array, got {type(value).__name__}")
    return value


def _int(value: object, where: str, low: int, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{where}: expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise InvalidInput(f"{where}: {value} is not in {bounds}")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise InvalidInput(f"{where}: {value} is not finite")
    return float(value)


def _seconds(value: object, where: str) -> float:
    seconds = _number(value, where)
    if seconds <= 0:
        raise InvalidInput(f"{where}: {seconds} is not a positive number of seconds")
    return seconds
