"""Through the gateway to a real ``modelyard serve`` of the demo model."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from gateway_harness import GatewayProcess

from modelyard.serving._demo import ServerProcess, write_demo_package

pytestmark = pytest.mark.slow

COLUMNS = [f"f{i}" for i in range(20)]
ROWS = [[((r * 7 + c) % 13) / 3.0 - 2.0 for c in range(20)] for r in range(3)]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    package = write_demo_package(tmp_path_factory.mktemp("gateway") / "churn", "logreg")
    with ServerProcess(str(package)) as server:
        yield server


def test_oip_and_mlflow_requests_reach_modelyard_serve(
    gateway: GatewayProcess, served: ServerProcess
) -> None:
    replica = {"id": "serve-1", "host": "127.0.0.1", "port": served.port}
    gateway.push(
        {
            "name": "churn-api",
            "revisions": [{"revision": 4, "weight": 100, "replicas": [replica]}],
        }
    )
    with httpx.Client(base_url=gateway.url + "/churn-api") as client:
        assert client.get("/v2/health/ready").json() == {"ready": True}
        inputs = [
            {"name": c, "shape": [len(ROWS)], "datatype": "FP64", "data": [r[i] for r in ROWS]}
            for i, c in enumerate(COLUMNS)
        ]
        oip = client.post("/v2/models/churn/infer", json={"id": "req-7", "inputs": inputs})
        assert oip.status_code == 200, oip.text
        assert oip.headers["x-modelyard-revision"] == "4"
        assert oip.headers["x-modelyard-replica"] == "serve-1"
        answer = oip.json()
        assert answer["id"] == "req-7"
        assert answer["model_name"] == "churn"
        labels = answer["outputs"][0]["data"]
        assert len(labels) == 3
        assert set(labels) <= {0, 1}

        mlflow = client.post(
            "/invocations", json={"dataframe_split": {"columns": COLUMNS, "data": ROWS}}
        )
        assert mlflow.status_code == 200, mlflow.text
        assert mlflow.json() == {"predictions": labels}
        assert mlflow.headers["content-type"] == "application/json"

        bad = client.post("/invocations", json={"dataframe_split": {"columns": COLUMNS[1:]}})
        assert bad.status_code == 400
    stats = gateway.revision_stats("churn-api", 4)
    assert (stats["arrivals"], stats["completions"], stats["errors"]) == (4, 4, 0)
