"""/api/v1/tokens: create (plaintext shown once), list, revoke."""

from __future__ import annotations

from fastapi import Depends, Query, Request

from modelyard.auth import AUTHENTICATED, Principal
from modelyard.server._context import app_context
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server._schemas import TokenCreate, TokenCreated, TokenOut

api = ApiRouter("/api/v1", tags=["tokens"])


@api.route("POST", "/tokens", permission=AUTHENTICATED, action="token.create", status_code=201)
def create_token(
    body: TokenCreate, request: Request, caller: Principal = Depends(current_principal)
) -> TokenCreated:
    request.state.audit_project = body.project
    issued = app_context(request).auth.create_token(
        caller,
        name=body.name,
        user=body.user,
        project=body.project,
        role=body.role,
        expires_in_s=body.expires_in_s,
    )
    set_audit_target(request, f"token:{issued.token.id} user:{issued.token.user}")
    return TokenCreated(**TokenOut.of(issued.token).model_dump(), token=issued.plaintext)


@api.route("GET", "/tokens", permission=AUTHENTICATED, action="token.list")
def list_tokens(
    request: Request,
    all_users: bool = Query(False, description="every user's tokens (platform admins)"),
    caller: Principal = Depends(current_principal),
) -> list[TokenOut]:
    tokens = app_context(request).auth.list_tokens(caller, all_users=all_users)
    return [TokenOut.of(t) for t in tokens]


@api.route("DELETE", "/tokens/{token_id}", permission=AUTHENTICATED, action="token.revoke")
def revoke_token(
    token_id: str, request: Request, caller: Principal = Depends(current_principal)
) -> TokenOut:
    set_audit_target(request, f"token:{token_id}")
    return TokenOut.of(app_context(request).auth.revoke_token(caller, token_id))
