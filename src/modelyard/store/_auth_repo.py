"""Persistence of projects, users, memberships, tokens and the audit log."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from modelyard.core.entities import AuditRecord, Membership, Project, Role, Token, User
from modelyard.core.errors import NotFound
from modelyard.core.ids import new_id
from modelyard.store._sql import SqlStore
from modelyard.store.schema import (
    AuditRow,
    BrowserSessionRow,
    MembershipRow,
    ProjectRow,
    TokenRow,
    UserRow,
)


def _project(row: ProjectRow) -> Project:
    return Project(row.id, row.name, row.description, row.created_at)


def _user(row: UserRow) -> User:
    return User(row.id, row.name, row.is_admin, row.created_at)


def _project_row(session: Session, name: str) -> ProjectRow:
    row = session.scalar(select(ProjectRow).where(ProjectRow.name == name))
    if row is None:
        raise NotFound(f"project {name!r} does not exist")
    return row


def _user_row(session: Session, name: str) -> UserRow:
    row = session.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        raise NotFound(f"user {name!r} does not exist")
    return row


class AuthRepository:
    """Rows of the auth tables as frozen entities. Names, not ids, cross this boundary."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    # --- projects ---------------------------------------------------------------------

    def create_project(self, name: str, description: str = "") -> Project:
        with self._store.transaction(f"project {name!r} already exists") as s:
            row = ProjectRow(
                id=new_id(), name=name, description=description, created_at=self._store.clock.now()
            )
            s.add(row)
            s.flush()
            return _project(row)

    def get_project(self, name: str) -> Project:
        with self._store.read() as s:
            return _project(_project_row(s, name))

    def list_projects(self) -> list[Project]:
        with self._store.read() as s:
            return [_project(r) for r in s.scalars(select(ProjectRow).order_by(ProjectRow.name))]

    # --- users and memberships --------------------------------------------------------

    def create_user(self, name: str, *, is_admin: bool = False) -> User:
        with self._store.transaction(f"user {name!r} already exists") as s:
            row = UserRow(
                id=new_id(), name=name, is_admin=is_admin, created_at=self._store.clock.now()
            )
            s.add(row)
            s.flush()
            return _user(row)

    def get_user(self, name: str) -> User:
        with self._store.read() as s:
            return _user(_user_row(s, name))

    def find_user(self, name: str) -> User | None:
        with self._store.read() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name))
            return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        with self._store.read() as s:
            return [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.name))]

    def set_membership(self, project: str, user: str, role: Role) -> Membership:
        """Grant ``user`` ``role`` in ``project``, replacing any earlier role there."""
        with self._store.transaction() as s:
            p, u = _project_row(s, project), _user_row(s, user)
            row = s.scalar(
                select(MembershipRow).where(
                    MembershipRow.project_id == p.id, MembershipRow.user_id == u.id
                )
            )
            if row is None:
                row = MembershipRow(
                    project_id=p.id, user_id=u.id, created_at=self._store.clock.now()
                )
                s.add(row)
            row.role = role.value
            s.flush()
            return Membership(p.name, u.name, role, row.created_at)

    def remove_membership(self, project: str, user: str) -> None:
        with self._store.transaction() as s:
            p, u = _project_row(s, project), _user_row(s, user)
            s.execute(
                delete(MembershipRow).where(
                    MembershipRow.project_id == p.id, MembershipRow.user_id == u.id
                )
            )

    def list_memberships(
        self, *, project: str | None = None, user: str | None = None
    ) -> list[Membership]:
        with self._store.read() as s:
            query = (
                select(MembershipRow, ProjectRow.name, UserRow.name)
                .join(ProjectRow, ProjectRow.id == MembershipRow.project_id)
                .join(UserRow, UserRow.id == MembershipRow.user_id)
                .order_by(ProjectRow.name, UserRow.name)
            )
            if project is not None:
                query = query.where(ProjectRow.id == _project_row(s, project).id)
            if user is not None:
                query = query.where(UserRow.id == _user_row(s, user).id)
            return [
                Membership(p_name, u_name, Role(m.role), m.created_at)
                for m, p_name, u_name in s.execute(query)
            ]

    # --- tokens -------------------------------------------------------------------------

    def create_token(
        self,
        *,
        token_id: str,
        secret_sha256: str,
        name: str,
        user: str,
        project: str | None,
        role: Role | None,
        expires_at: float | None,
    ) -> Token:
        with self._store.transaction(f"token id {token_id!r} already exists") as s:
            u = _user_row(s, user)
            p = _project_row(s, project) if project is not None else None
            row = TokenRow(
                id=token_id,
                name=name,
                user_id=u.id,
                secret_sha256=secret_sha256,
                project_id=p.id if p else None,
                role=role.value if role else None,
                created_at=self._store.clock.now(),
                expires_at=expires_at,
            )
            s.add(row)
            s.flush()
            return self._token(s, row)

    def find_token(self, token_id: str) -> tuple[Token, str] | None:
        """The token and its stored secret hash, or None."""
        with self._store.read() as s:
            row = s.get(TokenRow, token_id)
            return None if row is None else (self._token(s, row), row.secret_sha256)

    def touch_token(self, token_id: str, now: float) -> None:
        with self._store.transaction() as s:
            row = s.get(TokenRow, token_id)
            if row is not None:
                row.last_used_at = now

    def revoke_token(self, token_id: str) -> Token:
        with self._store.transaction() as s:
            row = s.get(TokenRow, token_id)
            if row is None:
                raise NotFound(f"token {token_id!r} does not exist")
            if row.revoked_at is None:
                row.revoked_at = self._store.clock.now()
            return self._token(s, row)

    def list_tokens(self, *, user: str | None = None) -> list[Token]:
        with self._store.read() as s:
            query = select(TokenRow).order_by(TokenRow.created_at, TokenRow.id)
            if user is not None:
                query = query.where(TokenRow.user_id == _user_row(s, user).id)
            return [self._token(s, r) for r in s.scalars(query)]

    @staticmethod
    def _token(s: Session, row: TokenRow) -> Token:
        user = s.get(UserRow, row.user_id)
        project = s.get(ProjectRow, row.project_id) if row.project_id else None
        return Token(
            id=row.id,
            name=row.name,
            user=user.name if user else "",
            project=project.name if project else None,
            role=Role(row.role) if row.role else None,
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
        )

    # --- passwords and browser sessions ---------------------------------------------------

    def password_hash(self, user: str) -> str | None:
        """The user's stored password hash (None: no password set, or no such user)."""
        with self._store.read() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == user))
            return None if row is None else row.password_hash

    def set_password_hash(self, user: str, password_hash: str) -> None:
        """Store a new hash and end the user's browser sessions, in one transaction."""
        with self._store.transaction() as s:
            row = _user_row(s, user)
            row.password_hash = password_hash
            s.execute(delete(BrowserSessionRow).where(BrowserSessionRow.user_id == row.id))

    def create_browser_session(
        self, *, session_id: str, user: str, csrf_token: str, expires_at: float
    ) -> None:
        with self._store.transaction() as s:
            u = _user_row(s, user)
            now = self._store.clock.now()
            # Expired sessions of anyone are swept on each login: the table stays small.
            s.execute(delete(BrowserSessionRow).where(BrowserSessionRow.expires_at <= now))
            s.add(
                BrowserSessionRow(
                    id=session_id,
                    user_id=u.id,
                    csrf_token=csrf_token,
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    def find_browser_session(self, session_id: str) -> tuple[str, str, float] | None:
        """``(user, csrf_token, expires_at)`` of a session, or None."""
        with self._store.read() as s:
            row = s.execute(
                select(UserRow.name, BrowserSessionRow.csrf_token, BrowserSessionRow.expires_at)
                .join(UserRow, UserRow.id == BrowserSessionRow.user_id)
                .where(BrowserSessionRow.id == session_id)
            ).first()
            return None if row is None else (row[0], row[1], row[2])

    def delete_browser_session(self, session_id: str) -> None:
        with self._store.transaction() as s:
            s.execute(delete(BrowserSessionRow).where(BrowserSessionRow.id == session_id))

    # --- audit --------------------------------------------------------------------------

    def append_audit(
        self,
        *,
        actor: str,
        token_id: str | None,
        action: str,
        project: str | None,
        target: str,
        outcome: str,
        status_code: int,
        detail: str = "",
        timestamp: float | None = None,
    ) -> AuditRecord:
        with self._store.transaction() as s:
            row = AuditRow(
                timestamp=self._store.clock.now() if timestamp is None else timestamp,
                actor=actor,
                token_id=token_id,
                action=action,
                project=project,
                target=target,
                outcome=outcome,
                status_code=status_code,
                detail=detail,
            )
            s.add(row)
            s.flush()
            return _audit(row)

    def list_audit(
        self,
        *,
        project: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Newest first."""
        with self._store.read() as s:
            query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
            if project is not None:
                query = query.where(AuditRow.project == project)
            if actor is not None:
                query = query.where(AuditRow.actor == actor)
            if action is not None:
                query = query.where(AuditRow.action == action)
            if since is not None:
                query = query.where(AuditRow.timestamp >= since)
            rows: Sequence[AuditRow] = s.scalars(query).all()
            return [_audit(r) for r in rows]


def _audit(row: AuditRow) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        timestamp=row.timestamp,
        actor=row.actor,
        token_id=row.token_id,
        action=row.action,
        project=row.project,
        target=row.target,
        outcome=row.outcome,
        status_code=row.status_code,
        detail=row.detail,
    )
