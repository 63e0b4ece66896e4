"""An in-process API harness for tests: the app, a TestClient and tokens per role."""

from __future__ import annotations

import re
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

    def browser(
        self, user: str = "admin", role: Role | None = None, project: str = "default"
    ) -> Browser:
        """A web UI session of ``user`` (given ``role`` in ``project`` unless None),
        signed in with a password set for the purpose."""
        if role is not None:
            self.ctx.auth.add_member(LOCAL_PRINCIPAL, project, user, role)
        self.ctx.auth.set_password(LOCAL_PRINCIPAL, user, UI_PASSWORD)
        return sign_in(self.client.app, user, UI_PASSWORD)

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


UI_PASSWORD = "correct horse battery"
_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """A signed-in web UI session over the app in process: its own cookie jar, and the
    session's CSRF token (read from the page, as a browser's form would)."""

    def __init__(self, client: TestClient, csrf: str) -> None:
        self.client = client
        self.csrf = csrf

    def get(self, url: str, **kwargs: Any) -> Any:  # the TestClient's own httpx Response
        headers = {"Accept": "text/html", **kwargs.pop("headers", {})}
        return self.client.get(url, headers=headers, **kwargs)

    def post(self, url: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        """A form post carrying the CSRF token (``csrf=False`` leaves it out)."""
        fields = dict(data or {})
        if kwargs.pop("csrf", True):
            fields.setdefault("csrf_token", self.csrf)
        headers = {"Accept": "text/html", **kwargs.pop("headers", {})}
        return self.client.post(url, data=fields, headers=headers, **kwargs)


def sign_in(app: Any, user: str, password: str) -> Browser:
    """Sign in through the login form, as a browser does."""
    client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    form = client.get("/ui/login", headers={"Accept": "text/html"})
    login_csrf = _CSRF_RE.search(form.text)
    assert login_csrf is not None, form.text
    done = client.post(
        "/ui/login",
        data={"username": user, "password": password, "csrf_token": login_csrf.group(1)},
        headers={"Accept": "text/html"},
    )
    assert done.status_code == 303, done.text
    page = client.get("/ui/?stay=1", headers={"Accept": "text/html"})
    csrf = _CSRF_RE.search(page.text)
    assert csrf is not None, page.text
    return Browser(client, csrf.group(1))
