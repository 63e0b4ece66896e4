"""REST calls of the budgets and quotas API (issue 16). Results come back as the API's
JSON (what ``--json`` prints)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeAlias
from urllib.parse import quote

Json: TypeAlias = dict[str, Any]


class _Requester(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


def _project(project: str) -> str:
    return f"/api/v1/projects/{quote(project, safe='')}"


class BudgetCalls:
    """Budget and quota methods of :class:`~modelyard.client.ModelyardClient`."""

    def set_budget(
        self: _Requester,
        project: str,
        monthly: float,
        *,
        currency: str | None = None,
        alert_at: Sequence[float] = (50, 80, 100),
        webhook: str = "",
        action: str = "",
    ) -> Json:
        """Create or replace a project's monthly budget; ``webhook_secret`` is shown once."""
        body: Json = {
            "monthly": monthly,
            "alert_at": list(alert_at),
            "webhook": webhook,
            "action": action,
        }
        if currency is not None:
            body["currency"] = currency
        result: Json = self.request("PUT", f"{_project(project)}/budget", json=body)
        return result

    def get_budget(self: _Requester, project: str) -> Json:
        """The budget with the month's spend, forecast, thresholds and crossings."""
        result: Json = self.request("GET", f"{_project(project)}/budget")
        return result

    def list_budgets(self: _Requester) -> list[Json]:
        result: list[Json] = self.request("GET", "/api/v1/budgets")
        return result

    def delete_budget(self: _Requester, project: str) -> None:
        self.request("DELETE", f"{_project(project)}/budget")

    def budget_history(
        self: _Requester,
        project: str,
        *,
        after_id: int = 0,
        limit: int = 200,
        kind: str | None = None,
    ) -> list[Json]:
        params: dict[str, Any] = {"after_id": after_id, "limit": limit}
        if kind:
            params["kind"] = kind
        result: list[Json] = self.request(
            "GET", f"{_project(project)}/budget/history", params=params
        )
        return result

    def set_quota(
        self: _Requester,
        project: str,
        *,
        max_replicas: int | None = None,
        max_cpu: float | None = None,
        max_memory_gb: float | None = None,
        max_gpu: float | None = None,
    ) -> Json:
        """Create or replace a project's quota (limits left out are unlimited)."""
        body = {
            "max_replicas": max_replicas,
            "max_cpu": max_cpu,
            "max_memory_gb": max_memory_gb,
            "max_gpu": max_gpu,
        }
        result: Json = self.request(
            "PUT",
            f"{_project(project)}/quota",
            json={k: v for k, v in body.items() if v is not None},
        )
        return result

    def get_quota(self: _Requester, project: str) -> Json:
        result: Json = self.request("GET", f"{_project(project)}/quota")
        return result

    def delete_quota(self: _Requester, project: str) -> None:
        self.request("DELETE", f"{_project(project)}/quota")
