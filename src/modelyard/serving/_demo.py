"""Demo model packages for tests, benchmarks and trying ``modelyard serve`` out.

The workload of the serving benchmark: ``make_classification(n_samples=20000,
n_features=20, random_state=0)`` with columns ``f0`` … ``f19``, fitted as a
LogisticRegression or a RandomForestClassifier(100 trees).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal, Self

N_FEATURES = 20


def write_demo_package(
    path: Path, kind: Literal["logreg", "forest"] = "logreg", *, columns: bool = True
) -> Path:
    """Fit the benchmark model and save it as a package at ``path``.

    Args:
        path: The package directory to create.
        kind: ``logreg`` or ``forest``.
        columns: Named columns ``f0``… (a DataFrame example) or one float64 tensor.

    Returns:
        ``path``.
    """
    import pandas as pd
    from sklearn.datasets import make_classification  # type: ignore[import-untyped]
    from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    from modelyard.models import save_model

    x, y = make_classification(n_samples=20000, n_features=N_FEATURES, random_state=0)
    names = [f"f{i}" for i in range(N_FEATURES)]
    data = pd.DataFrame(x, columns=names) if columns else x
    model: object
    if kind == "logreg":
        model = LogisticRegression(max_iter=1000).fit(data, y)
    else:
        model = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(data, y)
    save_model(model, path, input_example=data[:5])
    return path


class FailingModel:
    """A Python model that raises for rows whose first value is 666 (500 path tests)."""

    def predict(self, data: object) -> object:
        """Zeros, or ValueError when a row starts with 666."""
        import numpy as np

        values = np.asarray(getattr(data, "values", data), dtype=float)
        if (values[:, 0] == 666).any():
            raise ValueError("the demo model refuses 666")
        return np.zeros(len(values))


class SlowModel:
    """A Python model that sleeps ``delay_s`` per call (graceful shutdown tests)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def predict(self, data: object) -> object:
        """Zeros, after sleeping."""
        import time

        import numpy as np

        time.sleep(self.delay_s)
        return np.zeros(len(np.asarray(getattr(data, "values", data))))


def write_python_package(path: Path, model: object, n_columns: int = 2) -> Path:
    """Save a demo Python model with ``n_columns`` float64 columns ``f0``… as a package."""
    import pandas as pd

    from modelyard.models import save_model

    example = pd.DataFrame({f"f{i}": [0.0, 1.0] for i in range(n_columns)})
    save_model(model, path, flavor="pyfunc", input_example=example)
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoggedProcess:
    """A subprocess whose output is captured, waited on until an URL answers, always stopped.

    Subclasses call :meth:`_start` and :meth:`_wait_ready`; tests use them as context
    managers or call :meth:`close`.
    """

    proc: subprocess.Popen[bytes]

    def _start(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    def _wait_ready(self, url: str, timeout_s: float, *, want_status: int | None = None) -> None:
        """Poll ``url`` until it answers (with ``want_status`` if given)."""
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.proc.args!r} exited early:\n{self.output()}")
            try:
                status = httpx.get(url, timeout=1.0).status_code
                if want_status is None or status == want_status:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.proc.args!r} not ready after {timeout_s}s:\n{self.output()}")

    def output(self) -> str:
        """Everything the process wrote so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout_s``; the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL: the process dies mid-whatever, as in a crash."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        """Stop the process and drop its captured output."""
        self.stop()
        self.log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ServerProcess(LoggedProcess):
    """``modelyard serve`` in a subprocess on a free port; always stopped on exit.

    Args:
        model: The model argument (package directory or ``models:/`` URI).
        args: Extra command-line options.
        ready_timeout_s: How long to wait for ``/v2/health/ready``.
        env: Extra environment variables.
    """

    def __init__(
        self,
        model: str,
        *args: str,
        ready_timeout_s: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._start(
            [sys.executable, "-m", "modelyard", "serve", model, "--port", str(self.port), *args],
            env,
        )
        self._wait_ready(self.url + "/v2/health/ready", ready_timeout_s, want_status=200)
