"""REST calls of the cost API: reports, right-sizing, tags. Results come back as the
API's JSON (what ``--json`` prints)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeAlias
from urllib.parse import quote

Json: TypeAlias = dict[str, Any]


class _Requester(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


def _cost(project: str) -> str:
    return f"/api/v1/projects/{quote(project, safe='')}/cost"


def _period(since: str, until: str | None, **more: str | None) -> dict[str, str]:
    params = {"since": since, **({"until": until} if until else {})}
    params.update({k: v for k, v in more.items() if v is not None})
    return params


class CostCalls:
    """Cost methods of :class:`~modelyard.client.ModelyardClient`."""

    def cost_report(
        self: _Requester,
        project: str | None,
        *,
        by: str = "deployment",
        since: str = "7d",
        until: str | None = None,
        tag_key: str | None = None,
    ) -> Json:
        """Cost per group of one project, or (``project`` None) of every project the
        caller has a role in."""
        path = f"{_cost(project)}/report" if project is not None else "/api/v1/cost/report"
        params = _period(since, until, by=by, tag_key=tag_key)
        result: Json = self.request("GET", path, params=params)
        return result

    def cost_deployment(
        self: _Requester, project: str, name: str, *, since: str = "7d", until: str | None = None
    ) -> Json:
        result: Json = self.request(
            "GET",
            f"{_cost(project)}/deployments/{quote(name, safe='')}",
            params=_period(since, until),
        )
        return result

    def cost_rightsize(self: _Requester, project: str, name: str, *, window: str = "7d") -> Json:
        result: Json = self.request(
            "GET",
            f"{_cost(project)}/deployments/{quote(name, safe='')}/rightsize",
            params={"window": window},
        )
        return result

    def apply_rightsize(
        self: _Requester,
        project: str,
        name: str,
        *,
        window: str = "7d",
        revision: int | None = None,
    ) -> Json:
        """Apply the stable revision's right-sizing hint as a new revision (rolling).

        Returns ``new_revision``, ``before`` / ``after`` (``cpu``, ``memory_mb``, ``gpu``),
        the verdict and the saving. Raises ``Conflict`` when the verdict is "no data" or
        "right-sized" or a rollout is in progress (nothing changed).
        """
        body: dict[str, object] = {"window": window}
        if revision is not None:
            body["revision"] = revision
        result: Json = self.request(
            "POST",
            f"{_cost(project)}/deployments/{quote(name, safe='')}/rightsize",
            json=body,
        )
        return result

    def cost_tags(self: _Requester, project: str) -> Json:
        result: Json = self.request("GET", f"{_cost(project)}/tags")
        return result

    def set_cost_tags(
        self: _Requester,
        project: str,
        values: Mapping[str, str],
        unset: Sequence[str] = (),
        *,
        deployment: str | None = None,
    ) -> Json:
        """Set and remove tags of the project, or of one of its deployments."""
        path = f"{_cost(project)}/tags"
        if deployment is not None:
            path = f"{_cost(project)}/deployments/{quote(deployment, safe='')}/tags"
        result: Json = self.request("PATCH", path, json={"set": dict(values), "unset": list(unset)})
        return result
