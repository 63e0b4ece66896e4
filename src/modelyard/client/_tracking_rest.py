"""REST calls of the native tracking API, decoded into frozen entities."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from modelyard.artifacts import validate_logical_path
from modelyard.core.entities import ArtifactEntry
from modelyard.core.tracking import (
    Experiment,
    LifecycleStage,
    LogBatch,
    Metric,
    Page,
    Run,
    RunStatus,
)


class _Requester(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def put_to(self, url: str, source: Path | bytes) -> ArtifactEntry: ...

    def download_to(
        self, url: str, dest: Path, expected_digest: str | None = None
    ) -> ArtifactEntry: ...


def _float(value: float | str) -> float:
    return float(value)  # float() reads "NaN", "Infinity" and "-Infinity" too


def wire_value(value: float) -> float | str:
    """JSON has no NaN or infinity; send MLflow's spellings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def experiment_of(d: dict[str, Any]) -> Experiment:
    return Experiment(
        id=int(d["id"]),
        project=d["project"],
        name=d["name"],
        lifecycle_stage=LifecycleStage(d["lifecycle_stage"]),
        creation_time_ms=d["creation_time_ms"],
        last_update_time_ms=d["last_update_time_ms"],
        tags=dict(d.get("tags", {})),
    )


def metric_of(d: dict[str, Any]) -> Metric:
    return Metric(d["key"], _float(d["value"]), int(d["step"]), int(d["timestamp_ms"]))


def run_of(d: dict[str, Any]) -> Run:
    return Run(
        id=d["id"],
        experiment_id=int(d["experiment_id"]),
        project=d["project"],
        name=d["name"],
        status=RunStatus(d["status"]),
        start_time_ms=d["start_time_ms"],
        end_time_ms=d.get("end_time_ms"),
        user=d["user"],
        parent_run_id=d.get("parent_run_id"),
        lifecycle_stage=LifecycleStage(d["lifecycle_stage"]),
        params=dict(d.get("params", {})),
        metrics={k: metric_of(m) for k, m in d.get("metrics", {}).items()},
        tags=dict(d.get("tags", {})),
    )


class TrackingCalls:
    """Mixed into ModelyardClient: experiments, runs, batches, search, run artifacts."""

    def create_experiment(
        self: _Requester, project: str, name: str, tags: dict[str, str] | None = None
    ) -> Experiment:
        body = {"name": name, "tags": tags or {}}
        url = f"/api/v1/projects/{quote(project, safe='')}/experiments"
        return experiment_of(self.request("POST", url, json=body))

    def find_experiment(self: _Requester, project: str, name: str) -> Experiment | None:
        url = f"/api/v1/projects/{quote(project, safe='')}/experiments"
        found = self.request("GET", url, params={"name": name})
        return experiment_of(found[0]) if found else None

    def list_experiments(self: _Requester, project: str) -> list[Experiment]:
        url = f"/api/v1/projects/{quote(project, safe='')}/experiments"
        return [experiment_of(d) for d in self.request("GET", url)]

    def get_experiment(self: _Requester, experiment_id: int) -> Experiment:
        return experiment_of(self.request("GET", f"/api/v1/experiments/{int(experiment_id)}"))

    def create_run(
        self: _Requester,
        experiment_id: int,
        *,
        name: str | None = None,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
        params: dict[str, str] | None = None,
    ) -> Run:
        body: dict[str, Any] = {"experiment_id": experiment_id, "tags": tags or {}}
        if params:
            body["params"] = params
        if name:
            body["name"] = name
        if parent_run_id:
            body["parent_run_id"] = parent_run_id
        return run_of(self.request("POST", "/api/v1/runs", json=body))

    def get_run(self: _Requester, run_id: str) -> Run:
        return run_of(self.request("GET", f"/api/v1/runs/{quote(run_id, safe='')}"))

    def update_run(
        self: _Requester,
        run_id: str,
        *,
        status: RunStatus | None = None,
        name: str | None = None,
    ) -> Run:
        body: dict[str, Any] = {}
        if status is not None:
            body["status"] = status.value
        if name is not None:
            body["name"] = name
        return run_of(self.request("PATCH", f"/api/v1/runs/{quote(run_id, safe='')}", json=body))

    def log_batch(
        self: _Requester, run_id: str, batch: LogBatch, *, end_status: RunStatus | None = None
    ) -> bool:
        """Send one batch; True if applied now, False if its batch_id was applied before.

        ``end_status`` (terminal) ends the run in the same transaction as the batch.
        """
        # Metrics are NamedTuples: json encodes them as [key, value, step, timestamp_ms]
        # arrays in C, with NaN/Infinity as the tokens Python's json reads back.
        fields: dict[str, Any] = {
            "batch_id": batch.batch_id,
            "metrics": batch.metrics,
            "params": dict(batch.params),
            "tags": dict(batch.tags),
        }
        if end_status is not None:
            fields["end_status"] = end_status.value
        body = json.dumps(fields).encode()
        url = f"/api/v1/runs/{quote(run_id, safe='')}/log-batch"
        headers = {"content-type": "application/json"}
        return bool(self.request("POST", url, content=body, headers=headers)["applied"])

    def metric_history(self: _Requester, run_id: str, key: str) -> list[Metric]:
        url = f"/api/v1/runs/{quote(run_id, safe='')}/metrics/{quote(key)}"
        out: list[Metric] = []
        token: str | None = None
        while True:
            params = {"page_token": token} if token else None
            page = self.request("GET", url, params=params)
            out.extend(metric_of(m) for m in page["metrics"])
            token = page.get("next_page_token")
            if not token:
                return out

    def search_runs(
        self: _Requester,
        experiment_ids: Sequence[int],
        *,
        filter_string: str | None = None,
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[Run]:
        body: dict[str, Any] = {
            "experiment_ids": list(experiment_ids),
            "order_by": list(order_by),
            "max_results": max_results,
        }
        if filter_string:
            body["filter"] = filter_string
        if page_token:
            body["page_token"] = page_token
        data = self.request("POST", "/api/v1/runs/search", json=body)
        return Page([run_of(r) for r in data["runs"]], data.get("next_page_token"))

    def log_run_artifact(
        self: _Requester, run_id: str, path: str, source: Path | bytes
    ) -> ArtifactEntry:
        url = (
            f"/api/v1/runs/{quote(run_id, safe='')}/artifacts/{quote(validate_logical_path(path))}"
        )
        return self.put_to(url, source)

    def list_run_artifacts(self: _Requester, run_id: str) -> list[ArtifactEntry]:
        data = self.request("GET", f"/api/v1/runs/{quote(run_id, safe='')}/artifacts")
        return [ArtifactEntry(d["path"], d["digest"], d["size"]) for d in data]

    def download_run_artifact(
        self: _Requester, run_id: str, entry: ArtifactEntry, dest: Path
    ) -> ArtifactEntry:
        """Download one run artifact; refused unless it has the listed digest."""
        url = f"/api/v1/runs/{quote(run_id, safe='')}/artifacts/{quote(entry.path)}"
        return self.download_to(url, dest, entry.digest)
