"""The launcher's pure parts: replica specs, process states, flavor modules, and the
zygote's command handling (no processes are started here)."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
from pathlib import Path

import pytest

from modelyard.core.errors import InvalidInput
from modelyard.deploy._launcher import (
    ReplicaSpec,
    flavor_modules,
    note_exit,
    parse_worker_spec,
    worker_spec,
)
from modelyard.deploy._zygote import Zygote
from modelyard.deploy.processes import parse_proc_stat, pid_alive
from modelyard.models import MANIFEST_NAME
from modelyard.serving import _worker
from modelyard.serving.options import RuntimeOptions, ServeOptions
from modelyard.serving.server import ResolvedModel


def make_spec(tmp_path: Path) -> ReplicaSpec:
    return ReplicaSpec(
        package_path=tmp_path / "pkg",
        model_name="churn",
        model_version="7",
        expected_files={"model.pkl": "ab" * 32},
        port=18080,
        log_path=tmp_path / "replica.log",
        host="127.0.0.2",
        runtime=RuntimeOptions(batching=False, max_batch_size=8, max_latency_ms=2.5, threads=2),
        max_body_bytes=1024,
        env={"A": "1"},
        log_level="debug",
    )


def expected_options() -> ServeOptions:
    return ServeOptions(
        host="127.0.0.2",
        port=18080,
        workers=1,
        max_body_bytes=1024,
        log_level="debug",
        runtime=RuntimeOptions(batching=False, max_batch_size=8, max_latency_ms=2.5, threads=2),
    )


def test_pid_alive_for_this_process() -> None:
    assert pid_alive(os.getpid())


def test_pid_alive_is_false_for_pids_that_cannot_exist() -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert not pid_alive(pid_max + 1)
    assert not pid_alive(0)
    assert not pid_alive(-1)


def test_proc_stat_parsing_survives_parentheses_in_the_command_name() -> None:
    assert parse_proc_stat("42 (odd) name) Z 17 42 42 0 -1") == ("Z", 17)
    assert parse_proc_stat("7 (python) S 1 7 7 0 -1 4194560") == ("S", 1)


def test_worker_spec_round_trips_through_json(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(worker_spec(make_spec(tmp_path))))
    resolved, options = parse_worker_spec(doc)
    assert resolved == ResolvedModel(tmp_path / "pkg", "churn", "7", {"model.pkl": "ab" * 32})
    assert options == expected_options()


def test_worker_module_reads_the_same_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m modelyard.serving._worker`` (the spawn path) gets the same settings."""
    calls: list[tuple[ResolvedModel, ServeOptions, bool]] = []

    def fake_run_worker(
        resolved: ResolvedModel, options: ServeOptions, *, reuse_port: bool
    ) -> None:
        calls.append((resolved, options, reuse_port))

    monkeypatch.setattr(_worker, "run_worker", fake_run_worker)
    monkeypatch.setattr(logging, "basicConfig", lambda **_: None)
    _worker.main([json.dumps(worker_spec(make_spec(tmp_path)))])
    resolved, options, _ = calls[0]
    assert resolved == ResolvedModel(tmp_path / "pkg", "churn", "7", {"model.pkl": "ab" * 32})
    assert options == expected_options()


def test_malformed_worker_specs_are_invalid_input(tmp_path: Path) -> None:
    doc = worker_spec(make_spec(tmp_path))
    with pytest.raises(InvalidInput, match="options"):
        parse_worker_spec({k: v for k, v in doc.items() if k != "options"})
    with pytest.raises(InvalidInput):
        parse_worker_spec({**doc, "expected_files": ["model.pkl"]})


def test_replica_port_must_be_a_tcp_port(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="port"):
        ReplicaSpec(tmp_path, "m", "1", None, 0, tmp_path / "log")


def test_flavor_modules_of_a_demo_package(tmp_path: Path) -> None:
    from modelyard.serving._demo import write_demo_package

    path = write_demo_package(tmp_path / "logreg", "logreg")
    assert flavor_modules(path) == ("sklearn", "sklearn.linear_model._logistic")


def write_manifest(path: Path, flavor: str, config: dict[str, object]) -> Path:
    path.mkdir()
    doc = {
        "format_version": 1,
        "flavor": flavor,
        "created_at": "2025-01-01T00:00:00Z",
        "python_version": "3.11",
        "files": [],
        "flavor_config": config,
    }
    (path / MANIFEST_NAME).write_text(json.dumps(doc))
    return path


def test_flavor_modules_by_flavor_and_mlflow_loader(tmp_path: Path) -> None:
    assert flavor_modules(write_manifest(tmp_path / "o", "onnx", {})) == ("onnxruntime",)
    mlflow_onnx = write_manifest(tmp_path / "mo", "mlflow", {"loader": "onnx"})
    assert flavor_modules(mlflow_onnx) == ("onnxruntime",)
    mlflow_sk = write_manifest(tmp_path / "ms", "mlflow", {"loader": "sklearn"})
    assert flavor_modules(mlflow_sk) == ("sklearn",)
    mlflow_py = write_manifest(tmp_path / "mp", "mlflow", {"loader": "pyfunc"})
    assert flavor_modules(mlflow_py) == ("mlflow.pyfunc",)


def test_flavor_modules_only_trusts_sklearn_estimator_modules(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "s", "sklearn", {"estimator_class": "os.system"})
    assert flavor_modules(path) == ("sklearn",)


def test_flavor_modules_is_empty_when_unknown(tmp_path: Path) -> None:
    assert flavor_modules(tmp_path) == ()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / MANIFEST_NAME).write_text("{not a manifest")
    assert flavor_modules(tmp_path / "bad") == ()
    assert flavor_modules(write_manifest(tmp_path / "x", "someday", {})) == ()


def test_exit_notes_name_the_status_or_the_signal(tmp_path: Path) -> None:
    log = tmp_path / "replica.log"
    note_exit(log, 10, 0)
    note_exit(log, 11, -signal.SIGKILL)
    assert log.read_text().splitlines() == [
        "modelyard: replica 10 exited with status 0",
        "modelyard: replica 11 was killed by SIGKILL",
    ]


def test_zygote_answers_ping_and_reports_bad_commands() -> None:
    zygote = Zygote(io.BytesIO())
    assert zygote.handle(b'{"op": "ping"}\n') == {"ok": True, "pid": os.getpid()}
    assert "unknown op" in str(zygote.handle(b'{"op": "dance"}\n')["error"])
    assert "error" in zygote.handle(b"not json\n")
    assert "malformed replica spec" in str(zygote.handle(b'{"op": "fork", "spec": {}}\n')["error"])


def test_zygote_preload_reports_modules_that_fail() -> None:
    reply = Zygote(io.BytesIO()).handle(
        b'{"op": "preload", "modules": ["json", "no_such_mod", "os;x"]}'
    )
    assert reply["ok"] is True
    failed = reply["failed"]
    assert isinstance(failed, dict)
    assert set(failed) == {"no_such_mod", "os;x"}
