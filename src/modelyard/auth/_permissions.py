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


@dataclass(frozen=True)
class Permission:
    scope: Scope
    role: Role | None = None

    def __str__(self) -> str:
        return f"{self.scope.value}:{self.role.value}" if self.role else self.scope.value


PUBLIC = Permission(Scope.PUBLIC)
AUTHENTICATED = Permission(Scope.AUTHENTICATED)
PLATFORM_ADMIN = Permission(Scope.PLATFORM_ADMIN)
PROJECT_VIEWER = Permission(Scope.PROJECT, Role.VIEWER)
PROJECT_EDITOR = Permission(Scope.PROJECT, Role.EDITOR)
PROJECT_ADMIN = Permission(Scope.PROJECT, Role.ADMIN)
