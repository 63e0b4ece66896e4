"""REST calls of the pipeline schedules API (issue 18). Results come back as the API's
JSON (what ``--json`` prints)."""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias
from urllib.parse import quote

Json: TypeAlias = dict[str, Any]


class _Requester(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


def _schedules(project: str, name: str | None = None) -> str:
    path = f"/api/v1/projects/{quote(project, safe='')}/schedules"
    return path if name is None else f"{path}/{quote(name, safe='')}"


class ScheduleCalls:
    """Pipeline schedule methods of :class:`~modelyard.client.ModelyardClient`."""

    def add_schedule(
        self: _Requester,
        project: str,
        name: str,
        target: str,
        cron: str,
        *,
        executor: str = "local",
        enabled: bool = True,
    ) -> Json:
        """Add a schedule of ``target`` (``path.py:attr`` in the server's
        ``MODELYARD_PIPELINES_DIR``) firing at the ticks of ``cron`` (UTC)."""
        body = {
            "name": name,
            "target": target,
            "cron": cron,
            "executor": executor,
            "enabled": enabled,
        }
        result: Json = self.request("POST", _schedules(project), json=body)
        return result

    def list_schedules(self: _Requester, project: str) -> list[Json]:
        result: list[Json] = self.request("GET", _schedules(project))
        return result

    def get_schedule(self: _Requester, project: str, name: str) -> Json:
        result: Json = self.request("GET", _schedules(project, name))
        return result

    def update_schedule(
        self: _Requester,
        project: str,
        name: str,
        *,
        enabled: bool | None = None,
        cron: str | None = None,
    ) -> Json:
        """Enable, disable or re-time a schedule (either re-arms it from now)."""
        body = {k: v for k, v in {"enabled": enabled, "cron": cron}.items() if v is not None}
        result: Json = self.request("PATCH", _schedules(project, name), json=body)
        return result

    def delete_schedule(self: _Requester, project: str, name: str) -> None:
        self.request("DELETE", _schedules(project, name))

    def run_schedule(self: _Requester, project: str, name: str) -> Json:
        """Fire now; returns the queued fire (PENDING) the server's scheduler starts."""
        result: Json = self.request("POST", f"{_schedules(project, name)}/run")
        return result

    def schedule_fires(self: _Requester, project: str, name: str, *, limit: int = 50) -> list[Json]:
        """A schedule's fires, newest first."""
        result: list[Json] = self.request(
            "GET", f"{_schedules(project, name)}/fires", params={"limit": limit}
        )
        return result
