"""An in-process API harness for tests: the app, a TestClient and tokens per role."""

from __future__ import annotations

from fastapi.testclient import TestClient

from modelyard.auth import LOCAL_PRINCIPAL
from modelyard.core.entities import Role
from modelyard.server import AppContext


class Api:
    """A TestClient for the app plus tokens for each role in the ``default`` project."""

    def __init__(self, ctx: AppContext, client: TestClient, admin_token: str) -> None:
        self.ctx = ctx
        self.client = client
        self.admin_token = admin_token
        self._tokens: dict[str, str] = {}

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def as_admin(self) -> dict[str, str]:
        return self.auth(self.admin_token)

    def token_for(self, user: str, role: Role, project: str = "default") -> str:
        """A token of a (new) user holding ``role`` in ``project``."""
        key = f"{user}.{project}.{role.value}"
        if key not in self._tokens:
            self.ctx.auth.add_member(LOCAL_PRINCIPAL, project, user, role)
            caller = self.ctx.auth.authenticate(self.admin_token)
            issued = self.ctx.auth.create_token(caller, name=key, user=user)
            self._tokens[key] = issued.plaintext
        return self._tokens[key]
