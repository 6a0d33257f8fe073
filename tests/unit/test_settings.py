"""Settings: every variable is documented; bad values and files fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from routeiq.settings import Settings, SettingsError, load_settings, unknown_variables

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
    with pytest.raises(SettingsError, match="must hold a mapping"):
        Settings()


def test_log_level_and_other_choices_take_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEIQ_LOG_LEVEL", "INFO")
    monkeypatch.setenv("ROUTEIQ_LOG_FORMAT", "Text")
    settings = Settings()
    assert (settings.log_level, settings.log_format) == ("info", "text")


def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEIQ_LOG_LEVEL", "loud")
    monkeypatch.setenv("ROUTEIQ_PORT", "0")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message and "log_level" not in message.replace("ROUTEIQ_LOG_LEVEL", "")
    assert "ROUTEIQ_LOG_LEVEL='loud': Input should be 'debug', 'info', 'warning' or 'error'" in message
    assert "ROUTEIQ_PORT='0': Input should be greater than or equal to 1" in message


def test_unknown_variables_name_the_closest_setting() -> None:
    environ = {
        "ROUTEIQ_DEFUALT_PROFILE": "eco",  # a typo
        "ROUTEIQ_ZZZ": "1",  # nothing close
        "ROUTEIQ_PORT": "8400",  # a setting
        "ROUTEIQ_CONFIG_FILE": "x.yaml",  # not a field, but read
        "ROUTEIQ_CLIENT_URL": "http://127.0.0.1:8400",  # the client's, in a shared environment
        "ROUTEIQ_SERVICE_HOST": "10.0.0.1",  # Kubernetes service links for a Service `routeiq`
        "ROUTEIQ_PORT_8400_TCP_ADDR": "10.0.0.1",
        "OTHER": "x",
    }
    assert unknown_variables(environ) == [
        "ROUTEIQ_DEFUALT_PROFILE is not a RouteIQ setting and is ignored (did you mean ROUTEIQ_DEFAULT_PROFILE?)",
        "ROUTEIQ_ZZZ is not a RouteIQ setting and is ignored",
    ]


def test_an_unknown_yaml_key_is_an_error_naming_the_closest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "routeiq.yaml"
    config.write_text("port: 9000\nembeding_cache_mb: 4\n")
    monkeypatch.setenv("ROUTEIQ_CONFIG_FILE", str(config))
    with pytest.raises(
        SettingsError, match=r"unknown key 'embeding_cache_mb' \(did you mean embedding_cache_mb\?\)"
    ):
        load_settings()


def test_missing_files_and_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"ROUTEIQ_CATALOG_FILE='.*nope.yaml': no such file"):
        load_settings(catalog_file=tmp_path / "nope.yaml")
    with pytest.raises(SettingsError, match=r"ROUTEIQ_ROUTERS_PATH=.*: not a folder"):
        load_settings(routers_path=Path(__file__))
