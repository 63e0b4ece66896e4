"""Frozen entities returned by stores and services; separate from live handles."""

from __future__ import annotations

import enum
from dataclasses import dataclass

DEFAULT_PROJECT = "default"


class Role(enum.StrEnum):
    """A member's role in one project. Ordered: viewer < editor < admin."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def allows(self, needed: Role) -> bool:
        """Whether this role grants what ``needed`` requires."""
        return self.rank >= needed.rank


_ROLE_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    description: str
    created_at: float


@dataclass(frozen=True)
class User:
    id: str
    name: str
    is_admin: bool
    created_at: float


@dataclass(frozen=True)
class Membership:
    project: str
    user: str
    role: Role
    created_at: float


@dataclass(frozen=True)
class Token:
    """An API token as stored: never carries the secret, only metadata.

    ``project``/``role`` restrict a scoped token to one project and at most that role.
    """

    id: str
    name: str
    user: str
    project: str | None
    role: Role | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None

    def is_active(self, now: float) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True)
class AuditRecord:
    """Who did what to which target, when, and how it ended."""

    id: int
    timestamp: float
    actor: str
    token_id: str | None
    action: str
    project: str | None
    target: str
    outcome: str
    status_code: int
    detail: str


@dataclass(frozen=True)
class ArtifactEntry:
    """One logical path of an artifact namespace and the blob it points at."""

    path: str
    digest: str
    size: int


@dataclass(frozen=True)
class IssuedToken:
    """A token just created: the only moment its plaintext exists."""

    token: Token
    plaintext: str
