"""A typed REST client for the native API. The CLI and the SDK both use it."""

from __future__ import annotations

import functools
import hashlib
import os
import ssl
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from modelyard.artifacts import validate_logical_path
from modelyard.client._budget_rest import BudgetCalls
from modelyard.client._cost_rest import CostCalls
from modelyard.client._data_rest import DataCalls
from modelyard.client._monitor_rest import MonitorCalls
from modelyard.client._registry_rest import RegistryCalls
from modelyard.client._schedule_rest import ScheduleCalls
from modelyard.client._tracking_rest import TrackingCalls
from modelyard.client.deploy_rest import DeploymentCalls
from modelyard.core.entities import (
    ArtifactEntry,
    AuditRecord,
    IssuedToken,
    Membership,
    Project,
    Role,
    Token,
    User,
)
from modelyard.core.errors import (
    IntegrityError,
    ModelyardError,
    Unavailable,
    error_from_code,
)

DIGEST_HEADER = "x-modelyard-digest"
CHUNK = 1 << 20


def _project(d: dict[str, Any]) -> Project:
    return Project(id="", name=d["name"], description=d["description"], created_at=d["created_at"])


def _membership(d: dict[str, Any]) -> Membership:
    return Membership(d["project"], d["user"], Role(d["role"]), d["created_at"])


def _token(d: dict[str, Any]) -> Token:
    return Token(
        id=d["id"],
        name=d["name"],
        user=d["user"],
        project=d.get("project"),
        role=Role(d["role"]) if d.get("role") else None,
        created_at=d["created_at"],
        expires_at=d.get("expires_at"),
        revoked_at=d.get("revoked_at"),
        last_used_at=d.get("last_used_at"),
    )


def _artifact(d: dict[str, Any]) -> ArtifactEntry:
    return ArtifactEntry(d["path"], d["digest"], d["size"])


class ModelyardClient(
    TrackingCalls,
    RegistryCalls,
    DataCalls,
    DeploymentCalls,
    MonitorCalls,
    CostCalls,
    BudgetCalls,
    ScheduleCalls,
):
    """One connection to a modelyard server.

    Errors come back as the same exception classes the server raised
    (``NotFound``, ``PermissionDenied`` …); an unreachable server raises ``Unavailable``.
    """

    def __init__(
        self,
        tracking_uri: str,
        token: str | None = None,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"user-agent": "modelyard-client"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.tracking_uri = tracking_uri.rstrip("/")
        self._http = httpx.Client(
            base_url=self.tracking_uri,
            headers=headers,
            timeout=timeout_s,
            transport=transport,
            verify=_ssl_context(),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ModelyardClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- plumbing -----------------------------------------------------------------------

    def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            response = self._http.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise Unavailable(
                f"cannot reach the modelyard server at {self.tracking_uri} ({exc}); "
                "start one with `modelyard server` or set MODELYARD_TRACKING_URI"
            ) from exc
        if response.status_code >= 400:
            if stream:
                response.read()
            raise _error_of(response)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return its decoded JSON body."""
        response = self._send(self._http.build_request(method, path, **kwargs))
        return response.json() if response.content else None

    def get_page(self, path: str) -> httpx.Response:
        """GET a web UI page as a browser would (HTML), authenticated by the token.

        The response comes back whatever its status (a page is not an API answer)."""
        try:
            return self._http.get(path, headers={"accept": "text/html"})
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the modelyard server at {self.tracking_uri}") from exc

    # --- system -------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/health")
        return result

    def whoami(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/v1/users/me")
        return result

    # --- projects, users ----------------------------------------------------------------

    def create_project(self, name: str, description: str = "") -> Project:
        body = {"name": name, "description": description}
        return _project(self.request("POST", "/api/v1/projects", json=body))

    def list_projects(self) -> list[Project]:
        return [_project(d) for d in self.request("GET", "/api/v1/projects")]

    def get_project(self, name: str) -> Project:
        return _project(self.request("GET", f"/api/v1/projects/{_seg(name)}"))

    def add_member(self, project: str, user: str, role: Role | str) -> Membership:
        body = {"user": user, "role": Role(role).value}
        return _membership(
            self.request("POST", f"/api/v1/projects/{_seg(project)}/members", json=body)
        )

    def list_members(self, project: str) -> list[Membership]:
        data = self.request("GET", f"/api/v1/projects/{_seg(project)}/members")
        return [_membership(d) for d in data]

    def list_users(self) -> list[User]:
        return [
            User("", d["name"], d["is_admin"], d["created_at"])
            for d in self.request("GET", "/api/v1/users")
        ]

    def set_password(self, user: str, password: str) -> None:
        """Set ``user``'s web UI password (yourself, or anyone as a platform admin)."""
        self.request("PUT", f"/api/v1/users/{_seg(user)}/password", json={"password": password})

    # --- tokens -------------------------------------------------------------------------

    def create_token(
        self,
        name: str,
        *,
        user: str | None = None,
        project: str | None = None,
        role: Role | str | None = None,
        expires_in_s: float | None = None,
    ) -> IssuedToken:
        body: dict[str, Any] = {"name": name}
        if user is not None:
            body["user"] = user
        if project is not None:
            body["project"] = project
        if role is not None:
            body["role"] = Role(role).value
        if expires_in_s is not None:
            body["expires_in_s"] = expires_in_s
        data = self.request("POST", "/api/v1/tokens", json=body)
        return IssuedToken(_token(data), data["token"])

    def list_tokens(self, *, all_users: bool = False) -> list[Token]:
        params = {"all_users": "true"} if all_users else None
        return [_token(d) for d in self.request("GET", "/api/v1/tokens", params=params)]

    def revoke_token(self, token_id: str) -> Token:
        return _token(self.request("DELETE", f"/api/v1/tokens/{_seg(token_id)}"))

    # --- audit --------------------------------------------------------------------------

    def list_audit(
        self,
        *,
        project: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        params: dict[str, Any] = {"limit": limit}
        for key, value in (("project", project), ("actor", actor), ("action", action)):
            if value is not None:
                params[key] = value
        if since is not None:
            params["since"] = since
        return [AuditRecord(**d) for d in self.request("GET", "/api/v1/audit", params=params)]

    # --- artifacts ----------------------------------------------------------------------

    def put_artifact(
        self, project: str, path: str, source: Path | bytes | Iterable[bytes]
    ) -> ArtifactEntry:
        """Upload a file, bytes or a stream of chunks to ``path`` in ``project``.

        For files and bytes the client sends their sha256 and the server refuses to
        store content that does not match it.
        """
        return self.put_to(_artifact_url(project, path), source)

    def put_to(self, url: str, source: Path | bytes | Iterable[bytes]) -> ArtifactEntry:
        """PUT a file, bytes or chunks to an artifact URL of the API."""
        headers: dict[str, str] = {}
        content: bytes | Iterable[bytes]
        if isinstance(source, Path):
            headers[DIGEST_HEADER] = _file_sha256(source)
            headers["content-length"] = str(source.stat().st_size)
            content = _file_chunks(source)
        elif isinstance(source, bytes):
            headers[DIGEST_HEADER] = hashlib.sha256(source).hexdigest()
            content = source
        else:
            content = source
        request = self._http.build_request("PUT", url, content=content, headers=headers)
        return _artifact(self._send(request).json())

    def list_artifacts(self, project: str, prefix: str = "") -> list[ArtifactEntry]:
        params = {"prefix": prefix} if prefix else None
        data = self.request("GET", f"/api/v1/projects/{_seg(project)}/artifacts", params=params)
        return [_artifact(d) for d in data]

    def download_artifact(self, project: str, path: str, dest: Path) -> ArtifactEntry:
        """Download to ``dest`` atomically; raises IntegrityError if the digest differs."""
        entry = self.download_to(_artifact_url(project, path), dest)
        return ArtifactEntry(path, entry.digest, entry.size)

    def download_to(
        self, url: str, dest: Path, expected_digest: str | None = None
    ) -> ArtifactEntry:
        """GET an artifact URL into ``dest``; the file appears only if its sha256 is right.

        The digest checked is ``expected_digest`` when given (what the caller recorded),
        else the one the server announces in ``x-modelyard-digest``.
        """
        path = url.rsplit("/", 1)[-1]
        response = self._send(self._http.build_request("GET", url), stream=True)
        expected = expected_digest or response.headers.get(DIGEST_HEADER, "")
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        digest, size = hashlib.sha256(), 0
        try:
            with tmp.open("wb") as fh:
                for chunk in response.iter_bytes(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    fh.write(chunk)
            if digest.hexdigest() != expected:
                raise IntegrityError(f"artifact {path!r} arrived with a different sha256")
            os.replace(tmp, dest)
        except (httpx.TransportError, OSError) as exc:
            raise Unavailable(f"download of {path!r} failed: {exc}") from exc
        finally:
            response.close()
            tmp.unlink(missing_ok=True)
        return ArtifactEntry(path, expected, size)

    def delete_artifact(self, project: str, path: str) -> None:
        self.request("DELETE", _artifact_url(project, path))


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context per process: building one loads the CA bundle (~20 ms), and a
    client is made per run (every tuning trial, every pipeline step)."""
    return httpx.create_ssl_context()


def _seg(value: str) -> str:
    return quote(value, safe="")


def _artifact_url(project: str, path: str) -> str:
    # Checked here too: an HTTP client would silently collapse "a/../b" into "b".
    return f"/api/v1/projects/{_seg(project)}/artifacts/{quote(validate_logical_path(path))}"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in _file_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def _error_of(response: httpx.Response) -> ModelyardError:
    try:
        body = response.json()
        return error_from_code(str(body["error_code"]), str(body["message"]))
    except (ValueError, KeyError, TypeError):
        text = response.text[:500] or response.reason_phrase
        return ModelyardError(f"HTTP {response.status_code}: {text}")
