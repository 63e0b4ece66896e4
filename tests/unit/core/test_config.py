from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.config import Settings, SettingsError, mask_uri_password


def test_defaults_live_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MODELYARD_STORE_URI", "MODELYARD_ARTIFACT_URI", "MODELYARD_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    settings = Settings()
    assert settings.home == tmp_path.resolve()
    assert settings.store_uri == f"sqlite:///{tmp_path.resolve()}/modelyard.db"
    assert settings.artifact_uri == f"file://{tmp_path.resolve()}/artifacts"
    assert settings.tracking_uri == "http://127.0.0.1:5005"
    assert settings.credentials_path == tmp_path.resolve() / "credentials"


def test_environment_overrides_and_masking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_STORE_URI", "postgresql+psycopg://me:s3cret@db:5432/my")
    monkeypatch.setenv("MODELYARD_ARTIFACT_URI", "s3://bucket/prefix")
    monkeypatch.setenv("MODELYARD_TOKEN", "myt_0123456789abcdef_secretsecret")
    shown = Settings().masked()
    assert shown["MODELYARD_STORE_URI"] == "postgresql+psycopg://me:***@db:5432/my"
    assert shown["MODELYARD_ARTIFACT_URI"] == "s3://bucket/prefix"
    assert "secretsecret" not in shown["MODELYARD_TOKEN"]
    assert "s3cret" not in repr(Settings().masked())


def test_settings_are_frozen() -> None:
    settings = Settings(home=Path("/tmp/x"))
    with pytest.raises(Exception, match="frozen"):
        settings.tracking_uri = "http://elsewhere"  # type: ignore[misc]


def test_mask_leaves_uris_without_password_alone() -> None:
    assert mask_uri_password("sqlite:////a/b.db") == "sqlite:////a/b.db"


def test_values_parse_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_AUTH_ENABLED", "No")
    monkeypatch.setenv("MODELYARD_GATEWAY_PORT", " 6006 ")
    monkeypatch.setenv("MODELYARD_BLOB_FSYNC", "on")
    monkeypatch.setenv("modelyard_project", "lower-case-name")
    settings = Settings()
    assert settings.auth_enabled is False
    assert settings.gateway_port == 6006
    assert settings.blob_fsync is True
    assert settings.project == "lower-case-name"
    assert settings.masked()["MODELYARD_BLOB_FSYNC"] == "true"


def test_blob_fsync_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELYARD_BLOB_FSYNC", raising=False)
    assert Settings().blob_fsync is False


def test_constructor_arguments_win_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_HOME", "/nowhere")
    monkeypatch.setenv("MODELYARD_BLOB_FSYNC", "true")
    settings = Settings(home=tmp_path, blob_fsync=False)
    assert settings.home == tmp_path.resolve()
    assert settings.blob_fsync is False


def test_every_bad_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_GATEWAY_PORT", "70000")
    monkeypatch.setenv("MODELYARD_MAX_REPLICAS", "many")
    monkeypatch.setenv("MODELYARD_BLOB_FSYNC", "sometimes")
    with pytest.raises(SettingsError) as caught:
        Settings()
    names = [name for name, _ in caught.value.problems]
    assert names == ["MODELYARD_GATEWAY_PORT", "MODELYARD_MAX_REPLICAS", "MODELYARD_BLOB_FSYNC"]
    assert "between 1 and 65535" in str(caught.value)
    with pytest.raises(TypeError, match="unknown settings: colour"):
        Settings(colour="red")


def test_replace_copies_and_pickles(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, token="myt_secret")
    moved = settings.replace(tracking_uri="http://elsewhere:1", gateway_port="7007")
    assert (moved.tracking_uri, moved.gateway_port) == ("http://elsewhere:1", 7007)
    assert (settings.tracking_uri, moved.home) == ("http://127.0.0.1:5005", settings.home)
    # Worker processes of `modelyard server --workers N` receive the settings pickled.
    assert pickle.loads(pickle.dumps(moved)) == moved  # noqa: S301 - our own bytes
    assert "myt_secret" not in repr(moved)
    assert moved.token is not None
    assert moved.token.get_secret_value() == "myt_secret"


def test_cli_reports_invalid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_GATEWAY_PORT", "zero")
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 2
    assert "invalid settings: MODELYARD_GATEWAY_PORT: expected an integer" in result.output
