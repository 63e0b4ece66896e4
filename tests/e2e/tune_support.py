"""Shared by the ``my.tune`` end-to-end modules: the SDK fixture's body, run listings,
and the objectives (module level in an importable module: local workers import them).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import modelyard as my
from modelyard.client import ModelyardClient
from modelyard.core.tracking import Run
from modelyard.testing.server_process import ServerProcess
from modelyard.tracking import fluent


def tuning_client(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelyardClient]:
    """Point the SDK at ``server`` in a fresh experiment; yield an admin client."""
    monkeypatch.setenv("MODELYARD_HOME", str(server.home))
    monkeypatch.setenv("MODELYARD_TRACKING_URI", server.uri)
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    fluent._reset_for_tests()
    my.set_experiment(f"tune-{uuid.uuid4().hex[:8]}")
    with ModelyardClient(server.uri, server.admin_token) as client:
        yield client
    fluent._reset_for_tests()


def children(client: ModelyardClient, parent: Run | str) -> list[Run]:
    parent_id = parent if isinstance(parent, str) else parent.id
    experiment = client.get_run(parent_id).experiment_id
    page = client.search_runs(
        [experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'"
    )
    return sorted(page.items, key=lambda r: int(r.tags["modelyard.trial"]))


def experiment_runs(client: ModelyardClient) -> list[Run]:
    experiment = fluent._get().current_experiment().id
    return client.search_runs([experiment], max_results=1000).items


# --- objectives ---------------------------------------------------------------------------


def quadratic(params: dict[str, Any]) -> dict[str, float]:
    loss = (params["x"] - 0.3) ** 2 + (0.0 if params["kernel"] == "rbf" else 1.0)
    return {"loss": loss, "abs_x": abs(params["x"])}


def learning_curve(params: dict[str, Any]) -> float:
    """A loss curve per x: large x is bad from the first step (pruning should see it)."""
    loss = 0.0
    for step in range(6):
        loss = params["x"] + 1.0 / (step + 1)
        my.report(step, loss)
        time.sleep(0.005)
    return loss


def identity(params: dict[str, Any]) -> float:
    time.sleep(0.01)
    return float(params["x"])


def constant(params: dict[str, Any]) -> float:
    return 1.0


def by_case(params: dict[str, Any]) -> object:
    case = params["case"]
    if case == "raise":
        raise ValueError("case raise is broken")
    if case == "nan":
        return math.nan
    if case == "silent":
        return None
    if case == "text":
        return "oops"
    if case == "logged":
        my.log_metric("loss", 3.0)
        return None
    return {"float": 1.0, "dict": 2.0}[case]


def broken(params: dict[str, Any]) -> float:
    raise KeyError("lr")


class Scaled:
    """A tiny pyfunc model: predictions are the inputs times ``a``."""

    def __init__(self, a: float) -> None:
        self.a = a

    def predict(self, rows: list[list[float]]) -> list[float]:
        return [self.a * row[0] for row in rows]


def with_model(params: dict[str, Any]) -> float:
    my.log_model(Scaled(params["a"]))
    return float((params["a"] - 2.0) ** 2)


def slow(params: dict[str, Any]) -> float:
    time.sleep(0.2)
    return float((params["x"] - 0.5) ** 2)
