"""Users, projects, roles, tokens, permission checks and the audit log."""

from __future__ import annotations

from modelyard.auth._permissions import (
    AUTHENTICATED,
    EXPERIMENT_EDITOR,
    EXPERIMENT_VIEWER,
    PLATFORM_ADMIN,
    PROJECT_ADMIN,
    PROJECT_EDITOR,
    PROJECT_VIEWER,
    PUBLIC,
    RUN_EDITOR,
    RUN_VIEWER,
    Permission,
    Scope,
    on_resource,
)
from modelyard.auth._principal import Principal
from modelyard.auth._service import LOCAL_PRINCIPAL, AuthService
from modelyard.auth._tokens import generate_token, hash_token, parse_token
from modelyard.core.entities import DEFAULT_PROJECT, IssuedToken

__all__ = [
    "AUTHENTICATED",
    "DEFAULT_PROJECT",
    "EXPERIMENT_EDITOR",
    "EXPERIMENT_VIEWER",
    "LOCAL_PRINCIPAL",
    "PLATFORM_ADMIN",
    "PROJECT_ADMIN",
    "PROJECT_EDITOR",
    "PROJECT_VIEWER",
    "PUBLIC",
    "RUN_EDITOR",
    "RUN_VIEWER",
    "AuthService",
    "IssuedToken",
    "Permission",
    "Principal",
    "Scope",
    "generate_token",
    "hash_token",
    "on_resource",
    "parse_token",
]
