from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.config import Settings, mask_uri_password


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
