"""Who is calling, and what they may do in which project."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelyard.core.entities import Role
from modelyard.core.errors import PermissionDenied


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``roles`` are the user's memberships. A token scoped to one project (``scope_project``)
    sees only that project, with at most ``scope_role`` there. A platform admin
    (``is_admin``) holds ``admin`` in every project unless the token is scoped.
    """

    user: str
    is_admin: bool
    token_id: str | None
    roles: dict[str, Role] = field(default_factory=dict)
    scope_project: str | None = None
    scope_role: Role | None = None

    def role_in(self, project: str) -> Role | None:
        """The effective role: the user's, capped by the token's scope."""
        role = Role.ADMIN if self.is_admin else self.roles.get(project)
        if self.scope_project is None:
            return role
        if project != self.scope_project or role is None:
            return None
        if self.scope_role is None:
            return role
        return min(role, self.scope_role, key=lambda r: r.rank)

    @property
    def is_platform_admin(self) -> bool:
        """A platform admin acting with an unscoped token."""
        return self.is_admin and self.scope_project is None

    def require(self, project: str, needed: Role) -> None:
        """Raises PermissionDenied unless the caller holds ``needed`` in ``project``."""
        role = self.role_in(project)
        if role is None or not role.allows(needed):
            held = role.value if role else "no role"
            raise PermissionDenied(
                f"{needed.value} role in project {project!r} required; {self.user} has {held}"
            )

    def require_platform_admin(self) -> None:
        if not self.is_platform_admin:
            raise PermissionDenied(f"platform admin required; {self.user} is not one")
