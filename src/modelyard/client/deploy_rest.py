"""REST calls of the deployments API.

Deployments come back as the API's JSON (``DeploymentJson``): ``endpoint``, ``status``,
``traffic``, ``revisions`` and ``replicas`` (``pid``, ``port``, ``state``, ``revision``) —
the same document ``modelyard deploy show --json`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeAlias
from urllib.parse import quote

DeploymentJson: TypeAlias = dict[str, Any]


class _Requester(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


def _base(project: str, name: str | None = None) -> str:
    url = f"/api/v1/projects/{quote(project, safe='')}/deployments"
    return url if name is None else f"{url}/{quote(name, safe='')}"


class DeploymentCalls:
    """Deployment methods of :class:`~modelyard.client.ModelyardClient`."""

    def create_deployment(
        self: _Requester,
        project: str,
        name: str,
        model: str,
        *,
        scaling: Mapping[str, object] | None = None,
        runtime: Mapping[str, object] | None = None,
        backend: Mapping[str, object] | None = None,
    ) -> DeploymentJson:
        """Create a deployment; ``backend`` is ``{"kind": "kubernetes", "namespace": …}``
        (local processes when None)."""
        body: dict[str, object] = {"name": name, "model": model, "scaling": dict(scaling or {})}
        if runtime is not None:
            body["runtime"] = dict(runtime)
        if backend is not None:
            body["backend"] = dict(backend)
        result: DeploymentJson = self.request("POST", _base(project), json=body)
        return result

    def render_deployment(
        self: _Requester, project: str, name: str, backend: Mapping[str, object]
    ) -> dict[str, str]:
        """The manifests that run ``name`` on ``backend`` (``{"kind": "kubernetes", …}``):
        file name -> YAML text."""
        params = {k: str(v) for k, v in backend.items() if v not in (None, "")}
        result: dict[str, str] = self.request(
            "GET", f"{_base(project, name)}/manifests", params=params
        )["files"]
        return result

    def list_deployments(self: _Requester, project: str) -> list[DeploymentJson]:
        result: list[DeploymentJson] = self.request("GET", _base(project))
        return result

    def get_deployment(self: _Requester, project: str, name: str) -> DeploymentJson:
        result: DeploymentJson = self.request("GET", _base(project, name))
        return result

    def update_deployment(
        self: _Requester,
        project: str,
        name: str,
        *,
        model: str | None = None,
        strategy: str = "rolling",
        steps: tuple[int, ...] = (10, 50, 100),
        step_interval_s: float = 60.0,
        max_error_rate: float = 0.01,
        max_p99_ratio: float = 1.5,
        scaling: Mapping[str, object] | None = None,
        runtime: Mapping[str, object] | None = None,
    ) -> DeploymentJson:
        body: dict[str, object] = {
            "model": model,
            "strategy": strategy,
            "steps": list(steps),
            "step_interval_s": step_interval_s,
            "max_error_rate": max_error_rate,
            "max_p99_ratio": max_p99_ratio,
            "scaling": dict(scaling or {}),
        }
        if runtime is not None:
            body["runtime"] = dict(runtime)
        result: DeploymentJson = self.request("PATCH", _base(project, name), json=body)
        return result

    def set_traffic(
        self: _Requester, project: str, name: str, weights: Mapping[int, int]
    ) -> DeploymentJson:
        body = {"weights": {str(v): int(w) for v, w in weights.items()}}
        result: DeploymentJson = self.request("PUT", _base(project, name) + "/traffic", json=body)
        return result

    def set_shadow(
        self: _Requester, project: str, name: str, version: int, percent: float
    ) -> DeploymentJson:
        body = {"version": version, "percent": percent}
        result: DeploymentJson = self.request("PUT", _base(project, name) + "/shadow", json=body)
        return result

    def rollback_deployment(self: _Requester, project: str, name: str) -> DeploymentJson:
        result: DeploymentJson = self.request("POST", _base(project, name) + "/rollback")
        return result

    def delete_deployment(self: _Requester, project: str, name: str) -> DeploymentJson:
        result: DeploymentJson = self.request("DELETE", _base(project, name))
        return result

    def deployment_events(
        self: _Requester,
        project: str,
        name: str,
        *,
        after: int = 0,
        limit: int = 1000,
        kind: str | None = None,
    ) -> list[DeploymentJson]:
        params: dict[str, object] = {"after": after, "limit": limit}
        if kind is not None:
            params["kind"] = kind
        result: list[DeploymentJson] = self.request(
            "GET", _base(project, name) + "/events", params=params
        )
        return result
