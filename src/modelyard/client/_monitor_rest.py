"""REST calls of the monitoring API: live view, drift, feedback, alerts, silences, actions,
exports. Results come back as the API's JSON (what ``--json`` prints)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeAlias
from urllib.parse import quote

Json: TypeAlias = dict[str, Any]


class _Requester(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


def _project(project: str) -> str:
    return f"/api/v1/projects/{quote(project, safe='')}"


def _dep(project: str, name: str) -> str:
    return f"{_project(project)}/deployments/{quote(name, safe='')}"


class MonitorCalls:
    """Monitoring methods of :class:`~modelyard.client.ModelyardClient`."""

    def monitor_show(self: _Requester, project: str, name: str, *, minutes: float = 15) -> Json:
        result: Json = self.request(
            "GET", f"{_dep(project, name)}/monitoring", params={"minutes": minutes}
        )
        return result

    def monitor_config(self: _Requester, project: str, name: str) -> Json:
        result: Json = self.request("GET", f"{_dep(project, name)}/monitoring/config")
        return result

    def set_monitor_config(
        self: _Requester, project: str, name: str, changes: Mapping[str, object]
    ) -> Json:
        result: Json = self.request(
            "PATCH", f"{_dep(project, name)}/monitoring/config", json=dict(changes)
        )
        return result

    def drift(
        self: _Requester,
        project: str,
        name: str,
        *,
        window_s: float | None = None,
        stattest: str | None = None,
        features: Sequence[str] = (),
    ) -> Json:
        params: dict[str, Any] = {}
        if window_s is not None:
            params["window_s"] = window_s
        if stattest:
            params["stattest"] = stattest
        if features:
            params["feature"] = list(features)
        result: Json = self.request("GET", f"{_dep(project, name)}/drift", params=params)
        return result

    def drift_history(self: _Requester, project: str, name: str, *, limit: int = 100) -> list[Json]:
        result: list[Json] = self.request(
            "GET", f"{_dep(project, name)}/drift/history", params={"limit": limit}
        )
        return result

    def send_feedback(
        self: _Requester, project: str, name: str, data: bytes, content_type: str
    ) -> Json:
        result: Json = self.request(
            "POST",
            f"{_dep(project, name)}/feedback",
            content=data,
            headers={"content-type": content_type},
        )
        return result

    def quality(self: _Requester, project: str, name: str, *, bucket_s: float = 3600) -> list[Json]:
        result: list[Json] = self.request(
            "GET", f"{_dep(project, name)}/quality", params={"bucket_s": bucket_s}
        )
        return result

    def add_alerts(
        self: _Requester,
        project: str,
        name: str,
        rules: Sequence[str],
        *,
        webhook: str = "",
        action: str = "",
        hysteresis: float = 0.1,
    ) -> Json:
        body = {
            "rules": list(rules),
            "webhook": webhook,
            "action": action,
            "hysteresis": hysteresis,
        }
        result: Json = self.request("POST", f"{_dep(project, name)}/alerts", json=body)
        return result

    def list_alerts(self: _Requester, project: str, name: str) -> list[Json]:
        result: list[Json] = self.request("GET", f"{_dep(project, name)}/alerts")
        return result

    def delete_alert(self: _Requester, project: str, name: str, rule_id: int) -> None:
        self.request("DELETE", f"{_dep(project, name)}/alerts/{int(rule_id)}")

    def alert_history(
        self: _Requester,
        project: str,
        name: str,
        *,
        after_id: int = 0,
        limit: int = 200,
        kind: str | None = None,
    ) -> list[Json]:
        params: dict[str, Any] = {"after_id": after_id, "limit": limit}
        if kind:
            params["kind"] = kind
        result: list[Json] = self.request(
            "GET", f"{_dep(project, name)}/alerts/history", params=params
        )
        return result

    def add_silence(
        self: _Requester,
        project: str,
        name: str,
        duration: str,
        *,
        rule: str = "",
        comment: str = "",
    ) -> Json:
        body = {"duration": duration, "rule": rule, "comment": comment}
        result: Json = self.request("POST", f"{_dep(project, name)}/silences", json=body)
        return result

    def list_silences(self: _Requester, project: str, name: str) -> list[Json]:
        result: list[Json] = self.request("GET", f"{_dep(project, name)}/silences")
        return result

    def delete_silence(self: _Requester, project: str, name: str, silence_id: int) -> None:
        self.request("DELETE", f"{_dep(project, name)}/silences/{int(silence_id)}")

    def add_alert_action(
        self: _Requester,
        project: str,
        name: str,
        *,
        command: Sequence[str] = (),
        webhook: str = "",
        timeout_s: float = 300.0,
    ) -> Json:
        body = {"name": name, "command": list(command), "webhook": webhook, "timeout_s": timeout_s}
        result: Json = self.request("POST", f"{_project(project)}/alert-actions", json=body)
        return result

    def list_alert_actions(self: _Requester, project: str) -> list[Json]:
        result: list[Json] = self.request("GET", f"{_project(project)}/alert-actions")
        return result

    def delete_alert_action(self: _Requester, project: str, name: str) -> None:
        self.request("DELETE", f"{_project(project)}/alert-actions/{quote(name, safe='')}")

    def monitor_export(self: _Requester, project: str) -> Json:
        result: Json = self.request("GET", f"{_project(project)}/monitoring/export")
        return result
