"""Users, projects, memberships and tokens: the rules, over the auth repository."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelyard.auth._names import validate_label, validate_project_name, validate_user_name
from modelyard.auth._passwords import (
    hash_password,
    needs_rehash,
    new_session,
    session_id_of,
    verify_password,
)
from modelyard.auth._principal import Principal
from modelyard.auth._tokens import generate_token, parse_token, token_matches
from modelyard.core.clock import Clock
from modelyard.core.entities import (
    DEFAULT_PROJECT,
    AuditRecord,
    IssuedToken,
    Membership,
    Project,
    Role,
    Token,
    User,
)
from modelyard.core.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from modelyard.credentials import write_credentials
from modelyard.store import AuthRepository

BOOTSTRAP_ADMIN = "admin"
LOCAL_PRINCIPAL = Principal(user="local", is_admin=True, token_id=None)
BROWSER_SESSION_TTL_S = 12 * 3600.0


@dataclass(frozen=True)
class BrowserLogin:
    """A new web UI session: the cookie value (shown once) and its CSRF token."""

    user: str
    cookie: str
    csrf_token: str
    expires_at: float


@dataclass(frozen=True)
class BrowserSession:
    principal: Principal
    csrf_token: str


class AuthService:
    def __init__(self, repo: AuthRepository, clock: Clock) -> None:
        self._repo = repo
        self._clock = clock

    # --- start-up -----------------------------------------------------------------------

    def bootstrap(self, credentials_path: Path, tracking_uri: str) -> IssuedToken | None:
        """Ensure the ``default`` project exists; on first start create the admin.

        The first admin token is written to ``credentials_path`` with mode 0600 and
        returned; later starts return None and leave the file alone.
        """
        if not any(p.name == DEFAULT_PROJECT for p in self._repo.list_projects()):
            self._repo.create_project(DEFAULT_PROJECT, "created on first start")
        if any(u.is_admin for u in self._repo.list_users()):
            return None
        admin = self._repo.find_user(BOOTSTRAP_ADMIN) or self._repo.create_user(
            BOOTSTRAP_ADMIN, is_admin=True
        )
        self._repo.set_membership(DEFAULT_PROJECT, admin.name, Role.ADMIN)
        issued = self._issue(name="bootstrap", user=admin.name, project=None, role=None)
        write_credentials(credentials_path, tracking_uri, issued.plaintext)
        return issued

    # --- authentication -----------------------------------------------------------------

    def authenticate(self, plaintext: str) -> Principal:
        """The principal behind a bearer token.

        Raises:
            Unauthenticated: malformed, unknown, revoked or expired token.
        """
        token_id = parse_token(plaintext)
        found = self._repo.find_token(token_id)
        if found is None or not token_matches(plaintext, found[1]):
            raise Unauthenticated("unknown API token")
        token = found[0]
        now = self._clock.now()
        if token.revoked_at is not None:
            raise Unauthenticated(f"API token {token.id} was revoked")
        if not token.is_active(now):
            raise Unauthenticated(f"API token {token.id} has expired")
        return self._principal(token.user, token.id, token.project, token.role)

    def _principal(
        self,
        name: str,
        token_id: str | None,
        scope_project: str | None = None,
        scope_role: Role | None = None,
    ) -> Principal:
        user = self._repo.get_user(name)
        roles = {m.project: m.role for m in self._repo.list_memberships(user=user.name)}
        return Principal(
            user=user.name,
            is_admin=user.is_admin,
            token_id=token_id,
            roles=roles,
            scope_project=scope_project,
            scope_role=scope_role,
        )

    # --- passwords and browser sessions -------------------------------------------------

    def set_password(self, caller: Principal, user: str, password: str) -> None:
        """Set ``user``'s web UI password (themselves, or a platform admin); ends their
        browser sessions."""
        if user != caller.user:
            caller.require_platform_admin()
        self._repo.get_user(user)
        self._repo.set_password_hash(user, hash_password(password))

    def login(self, user: str, password: str) -> BrowserLogin:
        """Check a password and open a browser session.

        Raises:
            Unauthenticated: unknown user or wrong password (one message for both).
        """
        stored = self._repo.password_hash(user) if len(user) <= 128 else None
        if not verify_password(stored, password) or stored is None:
            raise Unauthenticated("wrong user name or password")
        if needs_rehash(stored):
            self._repo.set_password_hash(user, hash_password(password))
        new = new_session()
        expires_at = self._clock.now() + BROWSER_SESSION_TTL_S
        self._repo.create_browser_session(
            session_id=new.session_id, user=user, csrf_token=new.csrf_token, expires_at=expires_at
        )
        return BrowserLogin(user, new.cookie, new.csrf_token, expires_at)

    def browser_session(self, cookie: str) -> BrowserSession:
        """The principal behind a session cookie, and the session's CSRF token.

        Raises:
            Unauthenticated: unknown, ended or expired session.
        """
        found = self._repo.find_browser_session(session_id_of(cookie))
        if found is None or found[2] <= self._clock.now():
            raise Unauthenticated("not signed in, or the session has ended: sign in again")
        user, csrf_token, _ = found
        return BrowserSession(self._principal(user, None), csrf_token)

    def logout(self, cookie: str) -> None:
        self._repo.delete_browser_session(session_id_of(cookie))

    # --- projects and members -----------------------------------------------------------

    def create_project(self, caller: Principal, name: str, description: str = "") -> Project:
        caller.require_platform_admin()
        return self._repo.create_project(validate_project_name(name), description)

    def list_projects(self, caller: Principal) -> list[Project]:
        projects = self._repo.list_projects()
        return [p for p in projects if caller.role_in(p.name) is not None]

    def add_member(self, caller: Principal, project: str, user: str, role: Role) -> Membership:
        """Create ``user`` if new, and grant ``role`` in ``project`` (project admins only)."""
        validate_user_name(user)
        self._repo.get_project(project)
        caller.require(project, Role.ADMIN)
        if self._repo.find_user(user) is None:
            self._repo.create_user(user)
        return self._repo.set_membership(project, user, role)

    def list_members(self, caller: Principal, project: str) -> list[Membership]:
        self._repo.get_project(project)
        caller.require(project, Role.VIEWER)
        return self._repo.list_memberships(project=project)

    def list_users(self, caller: Principal) -> list[User]:
        caller.require_platform_admin()
        return self._repo.list_users()

    # --- tokens -------------------------------------------------------------------------

    def create_token(
        self,
        caller: Principal,
        *,
        name: str,
        user: str | None = None,
        project: str | None = None,
        role: Role | None = None,
        expires_in_s: float | None = None,
    ) -> IssuedToken:
        """Issue a token for ``user`` (default: the caller).

        A caller can never hand out more than they hold: a scoped token needs the caller
        to hold ``role`` in ``project``; a token for someone else needs admin of that
        project (scoped) or platform admin (unscoped).
        """
        validate_label("token name", name)
        owner = user or caller.user
        if role is not None and project is None:
            raise InvalidInput("role needs a project: pass project together with role")
        if expires_in_s is not None and expires_in_s <= 0:
            raise InvalidInput(f"expires_in_s must be positive, got {expires_in_s}")
        if project is not None:
            self._repo.get_project(project)
            caller.require(project, role or Role.VIEWER)
            if owner != caller.user:
                caller.require(project, Role.ADMIN)
        elif (owner != caller.user or caller.scope_project is not None) and (
            not caller.is_platform_admin
        ):
            raise PermissionDenied(
                "an unscoped token for another user, or from a scoped token, needs a platform admin"
            )
        self._repo.get_user(owner)
        expires_at = None if expires_in_s is None else self._clock.now() + expires_in_s
        return self._issue(name=name, user=owner, project=project, role=role, expires_at=expires_at)

    def list_tokens(self, caller: Principal, *, all_users: bool = False) -> list[Token]:
        if all_users:
            caller.require_platform_admin()
            return self._repo.list_tokens()
        return self._repo.list_tokens(user=caller.user)

    def revoke_token(self, caller: Principal, token_id: str) -> Token:
        found = self._repo.find_token(token_id)
        if found is None or (found[0].user != caller.user and not caller.is_platform_admin):
            raise NotFound(f"token {token_id!r} does not exist")
        return self._repo.revoke_token(token_id)

    def _issue(
        self,
        *,
        name: str,
        user: str,
        project: str | None,
        role: Role | None,
        expires_at: float | None = None,
    ) -> IssuedToken:
        new = generate_token()
        token = self._repo.create_token(
            token_id=new.token_id,
            secret_sha256=new.sha256,
            name=name,
            user=user,
            project=project,
            role=role,
            expires_at=expires_at,
        )
        return IssuedToken(token, new.plaintext)

    # --- audit --------------------------------------------------------------------------

    def list_audit(
        self,
        caller: Principal,
        *,
        project: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        if not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit must be between 1 and 10000, got {limit}")
        if project is None:
            caller.require_platform_admin()
        else:
            caller.require(project, Role.ADMIN)
        return self._repo.list_audit(
            project=project, actor=actor, action=action, since=since, limit=limit
        )
