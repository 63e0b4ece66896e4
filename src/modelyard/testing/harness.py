"""An in-process API harness for tests: the app, a TestClient and tokens per role."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient

from modelyard.auth import LOCAL_PRINCIPAL
from modelyard.client import ModelyardClient
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

    def rest_client(self, token: str | None = None) -> ModelyardClient:
        """The real REST client (what the CLI and SDK use), talking to this app in process."""
        return ModelyardClient(
            "http://testserver", token or self.admin_token, transport=_InProcess(self.client)
        )

    def token_for(self, user: str, role: Role, project: str = "default") -> str:
        """A token of a (new) user holding ``role`` in ``project``."""
        key = f"{user}.{project}.{role.value}"
        if key not in self._tokens:
            self.ctx.auth.add_member(LOCAL_PRINCIPAL, project, user, role)
            caller = self.ctx.auth.authenticate(self.admin_token)
            issued = self.ctx.auth.create_token(caller, name=key, user=user)
            self._tokens[key] = issued.plaintext
        return self._tokens[key]


class _InProcess(httpx.BaseTransport):
    """Hands the REST client's requests to the TestClient's transport (the app itself)."""

    def __init__(self, client: TestClient) -> None:
        # Starlette's TestClient speaks its own httpx build; requests pass through as is.
        self._inner: Any = client._transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        response = self._inner.handle_request(request)
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.read()
        )
