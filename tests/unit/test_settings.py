"""Settings: every variable is documented; bad values and files fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from routeiq.settings import Settings

DOCS = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [
        f"ROUTEIQ_{name.upper()}" for name in Settings.model_fields if f"`ROUTEIQ_{name.upper()}`" not in DOCS
    ]
    assert not missing, f"document these in docs/configuration.md: {missing}"


def test_env_and_yaml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "routeiq.yaml"
    config.write_text("port: 9000\ndefault_profile: eco\n")
    monkeypatch.setenv("ROUTEIQ_CONFIG_FILE", str(config))
    monkeypatch.setenv("ROUTEIQ_PORT", "9100")
    settings = Settings()
    assert settings.port == 9100  # env beats file
    assert settings.default_profile == "eco"


def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ROUTEIQ_PORT", "eighty")
    with pytest.raises(ValidationError, match="port"):
        Settings()
    monkeypatch.delenv("ROUTEIQ_PORT")
    monkeypatch.setenv("ROUTEIQ_STRATEGY", "magic")
    with pytest.raises(ValidationError, match="centroid"):
        Settings()
    monkeypatch.delenv("ROUTEIQ_STRATEGY")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- not\n- a mapping\n")
    monkeypatch.setenv("ROUTEIQ_CONFIG_FILE", str(bad))
    with pytest.raises(ValueError, match="must hold a mapping"):
        Settings()
