"""The saved admin token goes only to the server that wrote it."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.client import resolve_connection
from modelyard.config import Settings
from modelyard.credentials import write_credentials


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    monkeypatch.delenv("MODELYARD_TRACKING_URI", raising=False)


def test_env_token_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_credentials(tmp_path / "credentials", "http://127.0.0.1:5005", "saved")
    monkeypatch.setenv("MODELYARD_TOKEN", "from-env")
    assert resolve_connection(Settings(home=tmp_path)).token == "from-env"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://127.0.0.1:5005", "saved"),
        ("http://localhost:5005/", "saved"),
        ("http://127.0.0.1:5006", None),
        ("http://models.example.com:5005", None),
        ("https://127.0.0.1:5005", None),
    ],
)
def test_saved_token_only_for_its_server(tmp_path: Path, uri: str, expected: str | None) -> None:
    write_credentials(tmp_path / "credentials", "http://127.0.0.1:5005", "saved")
    conn = resolve_connection(Settings(home=tmp_path, tracking_uri=uri))
    assert conn.token == expected


def test_missing_or_corrupt_credentials_mean_no_token(tmp_path: Path) -> None:
    assert resolve_connection(Settings(home=tmp_path)).token is None
    (tmp_path / "credentials").write_text("{not json")
    assert resolve_connection(Settings(home=tmp_path)).token is None
