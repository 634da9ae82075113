"""Settings: names, defaults, parsing and one-line errors that never echo a secret."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.config import SettingsError, load_settings, parse_timezone
from pipeline.okx.limits import BrokerType


def test_defaults_match_the_documented_interface() -> None:
    settings = load_settings()
    assert settings.okx_base_url == "https://www.okx.com"
    assert settings.okx_demo is False
    assert settings.rebates_broker_types == ()
    assert settings.rebates_db == Path("data/rebates.duckdb")
    assert settings.rebates_data_dir == Path("data")
    assert settings.rebates_tz.utcoffset(None) == timedelta(hours=8)
    assert settings.rebates_start_date is None


def test_reads_every_variable_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKX_API_KEY", "k")
    monkeypatch.setenv("OKX_SECRET_KEY", "s")
    monkeypatch.setenv("OKX_PASSPHRASE", "p")
    monkeypatch.setenv("OKX_BASE_URL", "http://127.0.0.1:8765/")
    monkeypatch.setenv("OKX_DEMO", "true")
    monkeypatch.setenv("REBATES_BROKER_TYPES", "oauth, API")
    monkeypatch.setenv("REBATES_DB", "/tmp/x.duckdb")
    monkeypatch.setenv("REBATES_DATA_DIR", "/tmp/d")
    monkeypatch.setenv("REBATES_TZ", "UTC")
    monkeypatch.setenv("REBATES_START_DATE", "2024-01-31")
    settings = load_settings()
    assert settings.require_credentials()[1].get_secret_value() == "s"
    assert settings.okx_base_url == "http://127.0.0.1:8765"
    assert settings.okx_demo is True
    assert settings.rebates_broker_types == (BrokerType.API, BrokerType.OAUTH)
    assert settings.rebates_db == Path("/tmp/x.duckdb")
    assert settings.rebates_tz == UTC
    assert settings.rebates_start_date == date(2024, 1, 31)


def test_reads_a_dot_env_file_in_the_working_directory() -> None:
    Path(".env").write_text("OKX_API_KEY=from-dotenv\nREBATES_BROKER_TYPES=api\n")
    settings = load_settings()
    assert settings.okx_api_key is not None
    assert settings.okx_api_key.get_secret_value() == "from-dotenv"
    assert settings.rebates_broker_types == (BrokerType.API,)


@pytest.mark.parametrize(
    ("text", "offset"),
    [("UTC+8", 8), ("+08:00", 8), ("UTC-5", -5), ("GMT+5:30", 5.5), ("utc", 0)],
)
def test_timezone_offsets(text: str, offset: float) -> None:
    assert parse_timezone(text).utcoffset(None) == timedelta(hours=offset)


def test_timezone_names_follow_daylight_saving() -> None:
    tz = parse_timezone("Europe/London")
    assert datetime(2025, 7, 1, tzinfo=tz).utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("REBATES_BROKER_TYPES", "api,dma", "REBATES_BROKER_TYPES"),
        ("REBATES_TZ", "Mars/Olympus", "REBATES_TZ"),
        ("REBATES_START_DATE", "31/01/2024", "REBATES_START_DATE"),
        ("OKX_BASE_URL", "http://okx.example.com", "OKX_BASE_URL"),
        ("OKX_BASE_URL", "https://www.okx.com/api/v5", "OKX_BASE_URL"),
        ("OKX_DEMO", "perhaps", "OKX_DEMO"),
    ],
)
def test_a_malformed_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{named}: expected ")
    assert "\n" not in message


def test_a_missing_credential_names_its_variable() -> None:
    settings = load_settings(okx_api_key="k", okx_secret_key="s")
    with pytest.raises(SettingsError, match=r"^OKX_PASSPHRASE is not set"):
        settings.require_credentials()


def test_secrets_are_masked_in_repr_and_never_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(okx_api_key="key-123", okx_secret_key="sec-456", okx_passphrase="pass-789")
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        for secret in ("key-123", "sec-456", "pass-789"):
            assert secret not in text
    with pytest.raises(SettingsError) as caught:
        load_settings(okx_secret_key=["not", "a", "string"])
    assert "not" not in str(caught.value).split(":", 1)[1].replace("not set", "")
