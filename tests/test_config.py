"""Settings: names, defaults, parsing and one-line errors that never echo a secret."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.config import SettingsError, UsageError, load_settings, parse_timezone, select_accounts
from pipeline.domain import BrokerType


def test_defaults_match_the_documented_interface() -> None:
    settings = load_settings()
    assert settings.okx_base_url == "https://www.okx.com"
    assert settings.okx_demo is False
    assert settings.rebates_broker_types == ()
    assert settings.rebates_db == Path("data/rebates.duckdb")
    assert settings.rebates_data_dir == Path("data")
    assert settings.rebates_tz.utcoffset(None) == timedelta(hours=8)
    assert settings.rebates_start_date is None
    assert settings.rebates_download_deadline == 1800
    assert settings.rebates_file_hosts == ()


def test_file_hosts_are_names_or_dotted_suffixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBATES_FILE_HOSTS", " Files.Example.com,.cdn.example.net,,files.example.com ")
    assert load_settings().rebates_file_hosts == ("files.example.com", ".cdn.example.net")


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
        ("REBATES_DOWNLOAD_DEADLINE", "0", "REBATES_DOWNLOAD_DEADLINE"),
        ("REBATES_DOWNLOAD_DEADLINE", "soon", "REBATES_DOWNLOAD_DEADLINE"),
        ("REBATES_FILE_HOSTS", "https://files.example.com", "REBATES_FILE_HOSTS"),
        ("REBATES_FILE_HOSTS", ".com", "REBATES_FILE_HOSTS"),
        ("REBATES_FILE_HOSTS", "localhost", "REBATES_FILE_HOSTS"),
        ("REBATES_FILE_HOSTS", "10.0.0.5", "REBATES_FILE_HOSTS"),
        ("REBATES_FILE_HOSTS", "*.example.com", "REBATES_FILE_HOSTS"),
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


def test_without_rebates_accounts_the_one_account_is_default() -> None:
    settings = load_settings(okx_api_key="k")
    assert settings.account_names == ("default",)
    assert settings.rebates_account == "default"
    assert settings.for_account("default") is settings
    assert select_accounts(settings) == [settings]


def test_each_account_reads_its_own_variables_and_falls_back_only_for_the_optional_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REBATES_ACCOUNTS", "EU, asia")
    monkeypatch.setenv("OKX_API_KEY", "shared-key")  # never used by a named account
    monkeypatch.setenv("REBATES_START_DATE", "2024-01-01")
    monkeypatch.setenv("REBATES_BROKER_TYPES", "api")
    for name, key in (("EU", "eu-key"), ("ASIA", "asia-key")):
        monkeypatch.setenv(f"OKX_API_KEY_{name}", key)
        monkeypatch.setenv(f"OKX_SECRET_KEY_{name}", f"{key}-secret")
        monkeypatch.setenv(f"OKX_PASSPHRASE_{name}", f"{key}-pass")
    monkeypatch.setenv("OKX_BASE_URL_ASIA", "https://asia.example.com")
    monkeypatch.setenv("REBATES_BROKER_TYPES_ASIA", "api,oauth")
    monkeypatch.setenv("REBATES_START_DATE_EU", "2025-02-01")
    settings = load_settings()
    assert settings.account_names == ("eu", "asia")
    eu, asia = select_accounts(settings)
    assert (eu.rebates_account, asia.rebates_account) == ("eu", "asia")
    assert eu.require_credentials()[0].get_secret_value() == "eu-key"
    assert asia.require_credentials()[2].get_secret_value() == "asia-key-pass"
    assert eu.okx_base_url == "https://www.okx.com" and asia.okx_base_url == "https://asia.example.com"
    assert eu.rebates_broker_types == (BrokerType.API,)
    assert asia.rebates_broker_types == (BrokerType.API, BrokerType.OAUTH)
    assert eu.rebates_start_date == date(2025, 2, 1) and asia.rebates_start_date == date(2024, 1, 1)
    assert [item.rebates_account for item in select_accounts(settings, "ASIA")] == ["asia"]


def test_an_account_without_its_own_credentials_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBATES_ACCOUNTS", "eu")
    monkeypatch.setenv("OKX_API_KEY", "shared-key")
    monkeypatch.setenv("OKX_SECRET_KEY", "shared-secret")
    monkeypatch.setenv("OKX_PASSPHRASE", "shared-pass")
    eu = load_settings().for_account("eu")
    with pytest.raises(SettingsError, match=r"^OKX_API_KEY_EU is not set"):
        eu.require_credentials()


def test_an_account_variable_is_also_read_from_dot_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("REBATES_ACCOUNTS=eu\nOKX_API_KEY_EU=from-dotenv\n")
    eu = load_settings().for_account("eu")
    assert eu.okx_api_key is not None and eu.okx_api_key.get_secret_value() == "from-dotenv"


def test_a_malformed_account_variable_is_named_and_a_secret_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBATES_ACCOUNTS", "eu")
    monkeypatch.setenv("OKX_BASE_URL_EU", "http://eu.example.com")
    with pytest.raises(SettingsError, match=r"^OKX_BASE_URL_EU: .*plain http"):
        load_settings().for_account("eu")
    monkeypatch.delenv("OKX_BASE_URL_EU")
    monkeypatch.setenv("OKX_SECRET_KEY_EU", " hunter2-secret\n")
    with pytest.raises(SettingsError) as caught:
        load_settings().for_account("eu")
    assert str(caught.value).startswith("OKX_SECRET_KEY_EU:") and "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [("eu,EU", "named twice"), ("9lives", "not an account name"), ("eu-west", "not an account name")],
)
def test_malformed_account_names_are_refused(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"^REBATES_ACCOUNTS: .*{message}"):
        load_settings(rebates_accounts=value)


def test_an_unknown_account_is_a_usage_error_listing_the_configured_ones() -> None:
    settings = load_settings(rebates_accounts="eu,asia")
    with pytest.raises(UsageError, match="'us' is not configured: REBATES_ACCOUNTS names eu, asia"):
        select_accounts(settings, "us")
    with pytest.raises(UsageError, match="REBATES_ACCOUNTS names default"):
        load_settings().for_account("eu")


def test_the_state_url_is_postgresql_only_and_a_secret() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(rebates_state_url="mysql://user:pw-secret@db/rebates")
    assert "pw-secret" not in str(caught.value)
    settings = load_settings(rebates_state_url="postgresql://user:pw-secret@db:5432/rebates")
    assert settings.rebates_state_url is not None and "pw-secret" not in repr(settings)
    assert load_settings(rebates_state_url="").rebates_state_url is None
