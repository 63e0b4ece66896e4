"""Request and response bodies of the native API. Inputs forbid unknown fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from modelyard.core.entities import (
    ArtifactEntry,
    AuditRecord,
    Membership,
    Project,
    Role,
    Token,
    User,
)


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class ProjectCreate(Input):
    name: str = Field(min_length=1, max_length=63)
    description: str = Field(default="", max_length=10_000)


class MemberAdd(Input):
    user: str = Field(min_length=1, max_length=128)
    role: Role


class PasswordSet(Input):
    password: str = Field(max_length=1024)


class TokenCreate(Input):
    name: str = Field(min_length=1, max_length=128)
    user: str | None = Field(default=None, max_length=128)
    project: str | None = Field(default=None, max_length=63)
    role: Role | None = None
    expires_in_s: float | None = Field(default=None, gt=0, le=10 * 365 * 86400)


class ProjectOut(BaseModel):
    name: str
    description: str
    created_at: float

    @classmethod
    def of(cls, p: Project) -> ProjectOut:
        return cls(name=p.name, description=p.description, created_at=p.created_at)


class UserOut(BaseModel):
    name: str
    is_admin: bool
    created_at: float

    @classmethod
    def of(cls, u: User) -> UserOut:
        return cls(name=u.name, is_admin=u.is_admin, created_at=u.created_at)


class MembershipOut(BaseModel):
    project: str
    user: str
    role: Role
    created_at: float

    @classmethod
    def of(cls, m: Membership) -> MembershipOut:
        return cls(project=m.project, user=m.user, role=m.role, created_at=m.created_at)


class TokenOut(BaseModel):
    id: str
    name: str
    user: str
    project: str | None
    role: Role | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None

    @classmethod
    def of(cls, t: Token) -> TokenOut:
        return cls(
            id=t.id,
            name=t.name,
            user=t.user,
            project=t.project,
            role=t.role,
            created_at=t.created_at,
            expires_at=t.expires_at,
            revoked_at=t.revoked_at,
            last_used_at=t.last_used_at,
        )


class TokenCreated(TokenOut):
    token: str = Field(description="the plaintext token; shown only in this response")


class AuditOut(BaseModel):
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

    @classmethod
    def of(cls, a: AuditRecord) -> AuditOut:
        return cls(**a.__dict__)


class ArtifactOut(BaseModel):
    path: str
    digest: str
    size: int

    @classmethod
    def of(cls, e: ArtifactEntry) -> ArtifactOut:
        return cls(path=e.path, digest=e.digest, size=e.size)


class Health(BaseModel):
    status: str
    version: str
    checks: dict[str, str] = Field(default_factory=dict)
