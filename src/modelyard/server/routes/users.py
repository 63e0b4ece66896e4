"""/api/v1/users: the platform's accounts (platform admins), and who am I."""

from __future__ import annotations

from fastapi import Depends, Request

from modelyard.auth import AUTHENTICATED, PLATFORM_ADMIN, Principal
from modelyard.server._context import app_context
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server._schemas import MembershipOut, PasswordSet, UserOut

api = ApiRouter("/api/v1", tags=["users"])


@api.route("GET", "/users", permission=PLATFORM_ADMIN, action="user.list")
def list_users(request: Request, caller: Principal = Depends(current_principal)) -> list[UserOut]:
    return [UserOut.of(u) for u in app_context(request).auth.list_users(caller)]


@api.route("GET", "/users/me", permission=AUTHENTICATED, action="user.me")
def whoami(request: Request, caller: Principal = Depends(current_principal)) -> dict[str, object]:
    return {
        "user": caller.user,
        "is_admin": caller.is_admin,
        "token_id": caller.token_id,
        "scope_project": caller.scope_project,
        "scope_role": caller.scope_role,
        "memberships": [
            MembershipOut.of(m).model_dump()
            for m in app_context(request).store.auth.list_memberships(user=caller.user)
        ]
        if caller.token_id
        else [],
    }


@api.route("PUT", "/users/{user}/password", permission=AUTHENTICATED, action="user.password")
def set_password(
    user: str, body: PasswordSet, request: Request, caller: Principal = Depends(current_principal)
) -> dict[str, object]:
    """Set a web UI password (your own, or anyone's as a platform admin); the user's
    browser sessions end. Only an argon2id hash is stored."""
    set_audit_target(request, user)
    app_context(request).auth.set_password(caller, user, body.password)
    return {"user": user, "password_set": True}
