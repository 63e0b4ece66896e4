"""A real ``modelyard serve`` process under load, with bad input, failing models, big
bodies, several workers, and SIGTERM while requests are in flight."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from modelyard.serving._demo import (
    FailingModel,
    ServerProcess,
    SlowModel,
    write_demo_package,
    write_python_package,
)

pytestmark = pytest.mark.slow

COLUMNS = [f"f{i}" for i in range(20)]


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_package(tmp_path_factory.mktemp("serving") / "churn", "logreg")


def good_body(i: int) -> dict[str, object]:
    row = [((i * 7 + j) % 13) / 3.0 for j in range(20)]
    return {"dataframe_split": {"columns": COLUMNS, "data": [row]}}


def bad_body(i: int) -> dict[str, object]:
    if i % 2:
        return {"dataframe_split": {"columns": COLUMNS[1:], "data": [[0.0] * 19]}}
    return {"dataframe_records": [dict.fromkeys(COLUMNS, "x")]}


def test_load_with_malformed_requests_mixed_in(churn: Path) -> None:
    """Concurrency 64 for ~10 s: every bad request 400, every good one 200, none lost."""
    with ServerProcess(str(churn)) as server:
        statuses: dict[tuple[bool, int], int] = {}
        sent = 0
        errors: list[str] = []

        async def worker(client: httpx.AsyncClient, deadline: float) -> None:
            nonlocal sent
            while time.monotonic() < deadline and sent < 40_000:
                i = sent
                sent += 1
                malformed = i % 20 == 7  # 5 %
                body = bad_body(i) if malformed else good_body(i)
                try:
                    r = await client.post("/invocations", json=body)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                    continue
                key = (malformed, r.status_code)
                statuses[key] = statuses.get(key, 0) + 1

        async def main() -> None:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as c:
                deadline = time.monotonic() + 10
                await asyncio.gather(*(worker(c, deadline) for _ in range(64)))

        asyncio.run(main())
        assert errors == []
        assert set(statuses) == {(False, 200), (True, 400)}, statuses
        assert sum(statuses.values()) == sent
        assert statuses[(True, 400)] >= sent // 20 - 1
        metrics = httpx.get(server.url + "/metrics").text
        assert f'status="200",version="1"}} {statuses[(False, 200)]}.0' in metrics


def test_model_exception_is_500_with_an_error_id_in_the_log(tmp_path: Path) -> None:
    package = write_python_package(tmp_path / "failing", FailingModel())
    with ServerProcess(str(package)) as server:
        ok = httpx.post(server.url + "/predict", json={"instances": [[1.0, 2.0]]})
        assert ok.json() == {"predictions": [0.0]}
        r = httpx.post(server.url + "/predict", json={"instances": [[666.0, 2.0]]})
        assert r.status_code == 500
        error_id = r.json()["error_id"]
        assert error_id in r.json()["error"]
        r = httpx.post(
            server.url + "/v2/models/failing/infer",
            json={"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [666, 0]}]},
        )
        assert r.status_code == 500
        server.stop()
        log = server.output()
        assert f"model error {error_id}" in log
        assert "ValueError: the demo model refuses 666" in log  # the traceback


def test_body_over_the_limit_is_413(churn: Path) -> None:
    with ServerProcess(str(churn), "--max-body-mb", "0.01") as server:
        big = {"dataframe_split": {"columns": COLUMNS, "data": [[0.0] * 20] * 200}}
        r = httpx.post(server.url + "/invocations", json=big)
        assert r.status_code == 413
        assert "larger than" in r.json()["error"]
        assert httpx.post(server.url + "/invocations", json=good_body(1)).status_code == 200


def test_no_batching_and_two_workers_answer_the_same(churn: Path) -> None:
    with ServerProcess(str(churn), "--no-batching", "--workers", "2") as server:
        bodies = [good_body(i) for i in range(40)]
        with ThreadPoolExecutor(8) as pool, httpx.Client(base_url=server.url) as client:
            answers = list(pool.map(lambda b: client.post("/invocations", json=b), bodies))
        assert {r.status_code for r in answers} == {200}
        start = time.perf_counter()
        with httpx.Client(base_url=server.url) as client:
            for _ in range(20):
                client.get("/ping")
        # TCP_NODELAY kept with SO_REUSEPORT workers: no ~40 ms delayed-ACK stalls.
        assert (time.perf_counter() - start) / 20 < 0.02
        assert server.stop() == 0


def test_sigterm_finishes_in_flight_requests(tmp_path: Path) -> None:
    package = write_python_package(tmp_path / "slow", SlowModel(0.5))
    with ServerProcess(str(package), "--no-batching", "--threads", "4") as server:
        with ThreadPoolExecutor(4) as pool:
            futures = [
                pool.submit(
                    httpx.post,
                    server.url + "/predict",
                    json={"instances": [[float(i), 0.0]]},
                    timeout=10,
                )
                for i in range(4)
            ]
            time.sleep(0.2)  # the requests are inside the model now
            server.proc.terminate()
            answers = [f.result() for f in futures]
        assert [r.status_code for r in answers] == [200] * 4
        assert server.proc.wait(10) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(server.url + "/ping", timeout=1)
