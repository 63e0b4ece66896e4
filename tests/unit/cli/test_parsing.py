from __future__ import annotations

import pytest
import typer

from modelyard.cli._context import parse_duration_s
from modelyard.config import Settings
from modelyard.core.errors import InvalidInput
from modelyard.net import is_loopback
from modelyard.server import ServerOptions, check_bind
from modelyard.server._run import client_uri


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("2w", 1209600)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "0", "-5m", "5y", "1.5.2h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_duration_s(text)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_binds_need_nothing(host: str) -> None:
    assert is_loopback(host)
    check_bind(ServerOptions(host=host), Settings())


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.com"])
def test_remote_binds_need_the_flag_and_auth(host: str) -> None:
    with pytest.raises(InvalidInput, match="--allow-remote"):
        check_bind(ServerOptions(host=host), Settings())
    check_bind(ServerOptions(host=host, allow_remote=True), Settings())
    with pytest.raises(InvalidInput, match="authentication disabled"):
        check_bind(ServerOptions(host=host, allow_remote=True), Settings(auth_enabled=False))


def test_client_uri_of_wildcard_bind_is_loopback() -> None:
    assert client_uri(ServerOptions(host="0.0.0.0", port=7)) == "http://127.0.0.1:7"
    assert client_uri(ServerOptions(host="::1", port=7)) == "http://[::1]:7"
