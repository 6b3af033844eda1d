"""Configuration: the shipped example is valid, and the layers stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiswatch.config import load_settings
from ingest.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "aiswatch.example.toml"


def test_the_example_configuration_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AISWATCH_CONFIG", raising=False)
    settings = load_settings(EXAMPLE)
    assert settings.log_level == "INFO"
    assert settings.ingest.batch_rows == 20_000
    assert settings.storage.timescaledb == "auto"
    assert settings.detectors.rules.near_port_underway_gap_h == 1.0
    assert settings.detectors.allowed_lateness_s == 300


def test_environment_beats_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "aiswatch.toml"
    config.write_text("[ingest]\ndedup_window_s = 12\nfragment_timeout_s = 4\n")
    monkeypatch.setenv("AISWATCH_INGEST__DEDUP_WINDOW_S", "5")
    settings = load_settings(config)
    assert settings.ingest.dedup_window_s == 5
    assert settings.ingest.fragment_timeout_s == 4


def test_the_database_password_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AISWATCH_CONFIG", raising=False)
    monkeypatch.setenv("AISWATCH_DATABASE_URL", "postgresql://u:hunter2@db/x")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert settings.database_url is not None
    assert "hunter2" in settings.database_url.get_secret_value()


def test_a_wrong_value_names_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AISWATCH_CONFIG", raising=False)
    monkeypatch.setenv("AISWATCH_STORAGE__TIMESCALEDB", "maybe")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.setting == "storage.timescaledb"


def test_the_example_sources_load_once_uncommented(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AISWATCH_CONFIG", raising=False)
    text = EXAMPLE.read_text()
    at = text.index("# [[sources]]")
    head, sources = text[:at], text[at:]
    uncommented = "\n".join(
        line[2:]
        if line.startswith("# [[sources]]") or (line.startswith("# ") and "=" in line.split("#")[1])
        else line
        for line in sources.splitlines()
    )
    config = tmp_path / "aiswatch.toml"
    config.write_text(head + uncommented)
    settings = load_settings(config)
    assert [s.kind for s in settings.sources] == ["tcp", "udp", "mqtt", "aisstream", "file"]
    mqtt = settings.sources[2]
    assert (
        mqtt.kind == "mqtt"
        and mqtt.shared_group == "aiswatch"
        and mqtt.password_env == "AISWATCH_MQTT_PASSWORD"
    )
