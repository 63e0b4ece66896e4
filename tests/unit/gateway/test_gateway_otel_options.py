"""How the gateway process learns its OTLP endpoint: flag, environment, launching server."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.deploy import _gateway_link
from modelyard.deploy._gateway_link import GatewayLink
from modelyard.gateway import __main__ as gateway_main
from modelyard.gateway import _run
from modelyard.gateway._options import GatewayOptions

OTEL_VARIABLES = (
    "MODELYARD_OTEL_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[GatewayOptions]:
    """Run ``main`` without serving: the options it would serve with."""
    options: list[GatewayOptions] = []
    monkeypatch.setattr(_run, "run_gateway", options.append)
    monkeypatch.setenv("MODELYARD_GATEWAY_SECRET", "s")
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return options


def test_tracing_is_off_by_default(started: list[GatewayOptions]) -> None:
    assert gateway_main.main([]) == 0
    assert started[0].otel_endpoint is None


def test_the_endpoint_defaults_to_the_environment(
    started: list[GatewayOptions], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert gateway_main.main([]) == 0
    assert started[0].otel_endpoint == "http://collector:4318/v1/traces"


def test_the_flag_wins_and_empty_turns_tracing_off(
    started: list[GatewayOptions], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_OTEL_ENDPOINT", "http://env:4318")
    assert gateway_main.main(["--otel-endpoint", "http://flag:4318/v1/traces"]) == 0
    assert gateway_main.main(["--otel-endpoint", ""]) == 0
    assert [o.otel_endpoint for o in started] == ["http://flag:4318/v1/traces", None]


class _Launched(Exception):
    def __init__(self, cmd: list[str]) -> None:
        super().__init__()
        self.cmd = cmd


def _launch_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    def popen(cmd: list[str], **_: object) -> None:
        raise _Launched(cmd)

    monkeypatch.setattr(_gateway_link.subprocess, "Popen", popen)
    link = GatewayLink(tmp_path, port=1)
    try:
        with pytest.raises(_Launched) as launched:
            link.start()
    finally:
        link.stop()
    return launched.value.cmd


def test_the_server_passes_its_endpoint_to_the_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert "--otel-endpoint" not in _launch_command(tmp_path, monkeypatch)
    monkeypatch.setenv("MODELYARD_OTEL_ENDPOINT", "http://collector:4318")
    cmd = _launch_command(tmp_path, monkeypatch)
    assert cmd[cmd.index("--otel-endpoint") + 1] == "http://collector:4318/v1/traces"
