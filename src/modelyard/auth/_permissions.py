"""The permission every route declares. The server refuses to build a route without one."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from modelyard.core.entities import Role


class Scope(enum.StrEnum):
    PUBLIC = "public"  # no token needed (health, metrics, openapi)
    AUTHENTICATED = "authenticated"  # any valid token; the handler narrows further
    PROJECT = "project"  # a role in the project named by the request
    PLATFORM_ADMIN = "platform-admin"  # an unscoped token of a platform admin
    RESOURCE = "resource"  # a role in the project that owns the resource the request names


@dataclass(frozen=True)
class Permission:
    """What a route requires.

    For ``Scope.RESOURCE``, ``resource`` names the kind of resource (``run``,
    ``experiment``) whose id the request carries (path, query or JSON body); the server
    resolves the owning project before the handler runs and requires ``role`` there.
    """

    scope: Scope
    role: Role | None = None
    resource: str | None = None

    def __str__(self) -> str:
        text = self.scope.value
        if self.resource:
            text += f"({self.resource})"
        return f"{text}:{self.role.value}" if self.role else text


def on_resource(resource: str, role: Role) -> Permission:
    """A role in the project of the ``resource`` the request names."""
    return Permission(Scope.RESOURCE, role, resource)


PUBLIC = Permission(Scope.PUBLIC)
AUTHENTICATED = Permission(Scope.AUTHENTICATED)
PLATFORM_ADMIN = Permission(Scope.PLATFORM_ADMIN)
PROJECT_VIEWER = Permission(Scope.PROJECT, Role.VIEWER)
PROJECT_EDITOR = Permission(Scope.PROJECT, Role.EDITOR)
PROJECT_ADMIN = Permission(Scope.PROJECT, Role.ADMIN)
RUN_VIEWER = on_resource("run", Role.VIEWER)
RUN_EDITOR = on_resource("run", Role.EDITOR)
EXPERIMENT_VIEWER = on_resource("experiment", Role.VIEWER)
EXPERIMENT_EDITOR = on_resource("experiment", Role.EDITOR)
