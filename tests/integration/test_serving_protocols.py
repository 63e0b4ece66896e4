"""A real ``modelyard serve`` process: OIP v2 with raw httpx and three real OIP clients,
the MLflow scoring protocol, ``/predict`` and ``/metrics``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelyard.models import load_model
from modelyard.serving._demo import ServerProcess, write_demo_package

pytestmark = pytest.mark.slow

COLUMNS = [f"f{i}" for i in range(20)]
ROWS = np.random.default_rng(3).normal(scale=2.0, size=(6, 20)).round(6)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_package(tmp_path_factory.mktemp("serving") / "churn", "logreg")


@pytest.fixture(scope="module")
def expected(package: Path) -> list[int]:
    labels = [int(v) for v in load_model(package).predict(ROWS)]
    assert set(labels) == {0, 1}  # both classes, so a mixed-up row order would show
    return labels


@pytest.fixture(scope="module")
def server(package: Path) -> Iterator[ServerProcess]:
    with ServerProcess(str(package), "--max-batch-size", "8") as proc:
        yield proc


def column_inputs(rows: np.ndarray) -> list[dict[str, object]]:
    return [
        {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[:, i].tolist()}
        for i, c in enumerate(COLUMNS)
    ]


def test_health_and_metadata(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as client:
        check_health_and_metadata(client.get)


def check_health_and_metadata(get: Callable[[str], httpx.Response]) -> None:
    assert get("/v2/health/live").json() == {"live": True}
    assert get("/v2/health/ready").json() == {"ready": True}
    assert get("/v2").json()["name"] == "modelyard"
    meta = get("/v2/models/churn").json()
    assert meta["name"] == "churn"
    assert meta["versions"] == ["1"]
    assert meta["inputs"][0] == {"name": "f0", "datatype": "FP64", "shape": [-1]}
    assert len(meta["inputs"]) == 20
    assert meta["outputs"] == [{"name": "output-0", "datatype": "INT64", "shape": [-1]}]
    assert get("/v2/models/churn/versions/1").json() == meta
    assert get("/v2/models/churn/ready").json() == {"ready": True}
    assert get("/v2/models/churn/versions/1/ready").status_code == 200
    missing = get("/v2/models/nope")
    assert missing.status_code == 404
    assert "nope" in missing.json()["error"]
    assert get("/v2/models/churn/versions/2").status_code == 404
    assert get("/ping").status_code == 200
    assert get("/health").status_code == 200


def test_oip_infer_with_raw_json(server: ServerProcess, expected: list[int]) -> None:
    body = {"id": "req-1", "inputs": column_inputs(ROWS)}
    r = httpx.post(f"{server.url}/v2/models/churn/versions/1/infer", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["id"] == "req-1"
    assert answer["model_name"] == "churn"
    assert answer["model_version"] == "1"
    assert answer["outputs"] == [
        {"name": "output-0", "datatype": "INT64", "shape": [6], "data": expected}
    ]
    bad = dict(body, inputs=column_inputs(ROWS)[1:])
    r = httpx.post(f"{server.url}/v2/models/churn/infer", json=bad)
    assert r.status_code == 400
    assert "missing column 'f0'" in r.json()["error"]


@pytest.mark.parametrize(
    "make_body",
    [
        lambda: {"dataframe_split": {"columns": COLUMNS, "data": ROWS.tolist()}},
        lambda: {"dataframe_records": [dict(zip(COLUMNS, r, strict=True)) for r in ROWS.tolist()]},
        lambda: {"instances": [dict(zip(COLUMNS, r, strict=True)) for r in ROWS.tolist()]},
        lambda: {"inputs": {c: ROWS[:, i].tolist() for i, c in enumerate(COLUMNS)}},
        lambda: {"inputs": ROWS.tolist()},
    ],
    ids=["dataframe_split", "dataframe_records", "instances", "inputs-columns", "inputs-rows"],
)
def test_mlflow_invocations_formats(
    server: ServerProcess, expected: list[int], make_body: object
) -> None:
    r = httpx.post(f"{server.url}/invocations", json=make_body())  # type: ignore[operator]
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected}


def test_mlflow_errors_are_400_with_the_column(server: ServerProcess) -> None:
    records = [dict(zip(COLUMNS, ROWS[0].tolist(), strict=True))]
    records[0]["f7"] = "seven"
    r = httpx.post(f"{server.url}/invocations", json={"dataframe_records": records})
    assert r.status_code == 400
    assert "column 'f7'" in r.json()["message"]
    assert r.json()["error_code"] == "BAD_REQUEST"
    r = httpx.post(f"{server.url}/invocations", content=b"{not json")
    assert r.status_code == 400


def test_predict_route(server: ServerProcess, expected: list[int]) -> None:
    body = {"instances": [dict(zip(COLUMNS, r, strict=True)) for r in ROWS.tolist()]}
    r = httpx.post(f"{server.url}/predict", json=body)
    assert r.json() == {"predictions": expected}


def test_metrics_count_requests_and_batches(server: ServerProcess) -> None:
    httpx.post(f"{server.url}/predict", json={"instances": ROWS.tolist()})
    httpx.post(f"{server.url}/predict", json={"instances": [[1.0]]})
    text = httpx.get(f"{server.url}/metrics").text
    assert 'route="/predict",status="200",version="1"' in text
    assert 'route="/predict",status="400",version="1"' in text
    assert "modelyard_serving_request_duration_seconds_bucket" in text
    assert 'modelyard_serving_batch_size_rows_count{model="churn",version="1"}' in text
    assert 'modelyard_serving_queue_depth{model="churn",version="1"} 0.0' in text
    assert "modelyard_serving_in_flight_requests" in text


TRITON_SCRIPT = """
import json, sys
import numpy as np
import tritonclient.http as triton

url, columns = sys.argv[1], json.loads(sys.argv[2])
rows = np.array(json.loads(sys.stdin.read()))
client = triton.InferenceServerClient(url=url)
assert client.is_server_live()
assert client.is_server_ready()
assert client.is_model_ready("churn")
assert client.get_model_metadata("churn")["name"] == "churn"
inputs = []
for i, name in enumerate(columns):
    tensor = triton.InferInput(name, [len(rows)], "FP64")
    tensor.set_data_from_numpy(rows[:, i].copy(), binary_data=False)
    inputs.append(tensor)
outputs = [triton.InferRequestedOutput("output-0", binary_data=False)]
result = client.infer("churn", inputs, outputs=outputs)
print(json.dumps(result.as_numpy("output-0").tolist()))
"""


def _run_client(python: Path | str, script: str, *args: str) -> object:
    """Run a client in its own process (its sockets and pins never leak into ours)."""
    result = subprocess.run(
        [str(python), "-c", script, *args],
        input=json.dumps(ROWS.tolist()),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_tritonclient_http_json(server: ServerProcess, expected: list[int]) -> None:
    host = server.url.removeprefix("http://")
    assert _run_client(sys.executable, TRITON_SCRIPT, host, json.dumps(list(COLUMNS))) == expected


KSERVE_SPEC = "kserve==0.21.0"
KSERVE_SCRIPT = """
import asyncio, json, sys
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

url, columns, rows = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.stdin.read())


async def main():
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
    try:
        assert await client.is_server_live(url)
        assert await client.is_server_ready(url)
        assert await client.is_model_ready(url, "churn")
        inputs = [
            InferInput(c, [len(rows)], "FP64", [r[i] for r in rows]) for i, c in enumerate(columns)
        ]
        request = InferRequest(model_name="churn", infer_inputs=inputs)
        response = await client.infer(url, request, model_name="churn")
        return [int(v) for v in response.outputs[0].data]
    finally:
        await client.close()


print(json.dumps(asyncio.run(main())))
"""


@pytest.fixture(scope="module")
def kserve_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kserve in a venv of its own: it pins pandas<3, which the project's lock is past."""
    venv = tmp_path_factory.mktemp("kserve") / "venv"
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(uv), "pip", "install", "-q", "--python", str(python), KSERVE_SPEC], check=True
    )
    return python


def test_kserve_rest_client_v2(
    server: ServerProcess, expected: list[int], kserve_python: Path
) -> None:
    got = _run_client(kserve_python, KSERVE_SCRIPT, server.url, json.dumps(list(COLUMNS)))
    assert got == expected


def test_open_inference_openapi_client(server: ServerProcess, expected: list[int]) -> None:
    from open_inference.openapi.client import InferenceRequest, OpenInferenceClient

    http = httpx.Client(base_url=server.url, timeout=60)
    client = OpenInferenceClient(base_url=server.url, httpx_client=http)
    client.check_server_readiness()
    assert client.read_model_metadata("churn").name == "churn"
    response = client.model_infer(
        "churn",
        request=InferenceRequest(inputs=column_inputs(ROWS)),  # type: ignore[arg-type]
    )
    assert response.outputs[0].data.__root__ == expected
    http.close()
