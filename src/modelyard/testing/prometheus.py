"""Run a real Prometheus server for tests: ``with prometheus_server(targets) as prom:``.

Uses the Debian package's binary (``apt-get install prometheus``; ``python3 dev.py test``
installs it). It scrapes only the given 127.0.0.1 targets, listens on 127.0.0.1 and a
free port, keeps its data in a fresh temporary directory, and is stopped (``/-/quit``,
then SIGTERM, then SIGKILL) and removed on exit, even if the body raised.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from modelyard.testing._ports import free_port

INSTALL_HINT = "install Prometheus with `apt-get install -y prometheus` (python3 dev.py test does)"


@dataclass(frozen=True)
class ScrapeTarget:
    """One endpoint to scrape: ``host:port`` and the metrics path."""

    address: str
    path: str = "/metrics"


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    data_dir: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result vector of an instant query."""
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        r.raise_for_status()
        body = r.json()
        if body.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, promql: str, check: Any, timeout_s: float = 60.0) -> list[dict[str, Any]]:
        """Poll ``promql`` until ``check(result)`` holds (a scrape shows after a few s)."""
        deadline = time.monotonic() + timeout_s
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(promql)
            if check(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"{promql!r} did not satisfy the check in {timeout_s} s: {result}")

    def targets(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v1/targets", timeout=10)
        r.raise_for_status()
        active: list[dict[str, Any]] = r.json()["data"]["activeTargets"]
        return active


def find_prometheus() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise RuntimeError(f"no prometheus binary: {INSTALL_HINT}")
    return found


@contextlib.contextmanager
def prometheus_server(
    jobs: Mapping[str, Sequence[ScrapeTarget]], *, scrape_interval_s: float = 1.0
) -> Iterator[PrometheusServer]:
    """Prometheus scraping ``jobs`` (job name → targets) every ``scrape_interval_s``."""
    binary = find_prometheus()
    tmp = Path(tempfile.mkdtemp(prefix="modelyard-prometheus-"))
    config = {
        "global": {
            "scrape_interval": f"{scrape_interval_s:g}s",
            "evaluation_interval": f"{scrape_interval_s:g}s",
        },
        "scrape_configs": [
            {
                "job_name": f"{job}-{i}",
                "metrics_path": target.path,
                "static_configs": [{"targets": [target.address], "labels": {"component": job}}],
            }
            for job, targets in jobs.items()
            for i, target in enumerate(targets)
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                text = (tmp / "prometheus.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"prometheus exited with {process.returncode}:\n{text}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus did not become ready in 60 s")
            time.sleep(0.2)
        yield PrometheusServer(url, tmp / "data")
    finally:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{url}/-/quit", timeout=5)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
