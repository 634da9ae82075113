"""The user rebate check: reading keys from CSV/xlsx, asking if-rebate within 2 a second, and never a whole key out."""

from __future__ import annotations

import csv
import logging
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from pydantic import SecretStr
from typer.testing import CliRunner

from pipeline.cli import Exit, app, console
from pipeline.clock import FakeClock, SystemClock
from pipeline.config import Settings
from pipeline.domain import IF_REBATE_PATH, BrokerType
from pipeline.okx.client import OkxClient, UserRebateInfo, mask_key
from pipeline.okx.errors import OkxAuthError, OkxError
from pipeline.okx.user_throttle import IfRebateLimiter
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import (
    DEFAULT_API_KEY,
    DEFAULT_PASSPHRASE,
    DEFAULT_SECRET_KEY,
    DEFAULT_USERS,
    SimAccount,
    SimulatorConfig,
)
from pipeline.users import TYPE_REASONS, UsersFileError, check_users, read_users, write_checks
from tests.conftest import accounts_variables, set_env

pytestmark = pytest.mark.slow

ROWS = [
    ("sim-user-earns-0001", "api"),
    ("sim-user-expired-0002", "api"),
    ("sim-user-vip-cap-0003", "api"),
    ("sim-user-vip6-0004", "api"),
    ("sim-user-msa-0005", "api"),
    ("sim-user-oauth-0006", "oauth"),
    ("sim-user-frozen-0007", "api"),
    ("a-key-okx-does-not-know", "api"),
    ("sim-user-earns-0001", "neither"),
]


def users_csv(path: Path, rows: list[tuple[str, str]] = ROWS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as output:
        writer = csv.writer(output)
        writer.writerow(["API Key", "brokerType", "note"])
        writer.writerows([key, broker_type, "x"] for key, broker_type in rows)
    return path


def test_the_client_reads_if_rebate_for_every_type(sim_settings: Settings, fake_clock: FakeClock) -> None:
    with OkxClient(sim_settings, clock=fake_clock) as client:
        for user in (user for user in DEFAULT_USERS if user.error is None):
            info = client.user_rebate_info(SecretStr(user.api_key), user.broker_type)
            fake_clock.advance(1)
            assert info.type == user.type
            assert info.affiliated is user.affiliated
            assert info.last_rebate == (Decimal(user.last_rebate) if user.last_rebate else None)


def test_an_error_names_the_users_key_by_its_last_four_characters_only(
    sim_settings: Settings, fake_clock: FakeClock
) -> None:
    key = "a-key-okx-does-not-know"
    with OkxClient(sim_settings, clock=fake_clock) as client, pytest.raises(OkxError) as raised:
        client.user_rebate_info(SecretStr(key), BrokerType.API)
    assert raised.value.code == "53010"
    assert key not in str(raised.value) and mask_key(key) in str(raised.value)


def test_a_key_is_masked_to_its_last_four_characters() -> None:
    assert mask_key("63d54aa0-0020-4ad9-a9f0-ac92654bc831") == "****c831"
    assert mask_key("short") == "****"


def test_every_user_is_checked_and_one_users_error_does_not_stop_the_others(
    sim_settings: Settings, fake_clock: FakeClock, simulator: RunningSimulator, tmp_path: Path
) -> None:
    checks = check_users(sim_settings, fake_clock, read_users(users_csv(tmp_path / "users.csv")))
    assert [check.row for check in checks] == list(range(2, 2 + len(ROWS)))
    assert [check.info.type if check.info else None for check in checks] == [
        "0", "1", "2", "3", "4", "0", None, None, None
    ]  # fmt: skip
    assert [check.earns for check in checks[:6]] == [True, False, False, False, False, True]
    assert checks[1].reason == TYPE_REASONS["1"] and "expired" in checks[1].reason
    assert checks[2].info is not None and checks[2].info.last_rebate == Decimal("1234.5")
    assert "frozen" in (checks[6].error or "")
    assert "check the key" in (checks[7].error or "")
    assert "neither api nor oauth" in (checks[8].error or "")
    assert simulator.state.count("GET", IF_REBATE_PATH, code="50011") == 0


def test_the_checks_stay_within_two_a_second(
    sim_settings: Settings, fake_clock: FakeClock, simulator: RunningSimulator, tmp_path: Path
) -> None:
    rows = [("sim-user-earns-0001", "api")] * 7
    check_users(sim_settings, fake_clock, read_users(users_csv(tmp_path / "users.csv", rows)))
    times = [call.at for call in simulator.state.calls("GET", IF_REBATE_PATH)]
    assert len(times) == 7
    for index in range(2, len(times)):
        assert times[index] - times[index - 2] >= timedelta(seconds=1)
    assert simulator.state.count("GET", IF_REBATE_PATH, code="50011") == 0


def test_two_processes_share_one_if_rebate_budget(tmp_path: Path, fake_clock: FakeClock) -> None:
    first, second = IfRebateLimiter(tmp_path, fake_clock), IfRebateLimiter(tmp_path, fake_clock)
    for limiter in (first, second, first):
        limiter.before_request("GET", IF_REBATE_PATH + "?apiKey=x")
    assert fake_clock.now() - first.granted[0] >= timedelta(seconds=1)  # the third waited for the shared second


def test_a_refusal_of_the_brokers_own_credentials_stops_the_check(
    sim_settings: Settings, fake_clock: FakeClock, tmp_path: Path
) -> None:
    wrong = sim_settings.replace(okx_passphrase="not-the-passphrase")
    with pytest.raises(OkxAuthError):
        check_users(wrong, fake_clock, read_users(users_csv(tmp_path / "users.csv")))


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_the_written_result_holds_masked_keys_only(
    sim_settings: Settings, fake_clock: FakeClock, simulator: RunningSimulator, tmp_path: Path, suffix: str
) -> None:
    source = tmp_path / "users.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["apiKey", "brokerType"])
    for key, broker_type in ROWS[:3]:
        sheet.append([key, broker_type])
    book.save(source)
    written = write_checks(check_users(sim_settings, fake_clock, read_users(source)), tmp_path / f"out{suffix}")
    if suffix == ".xlsx":
        rows = [list(row) for row in load_workbook(written).worksheets[0].iter_rows(values_only=True)]
    else:
        rows = [list(row) for row in csv.reader(written.open(encoding="utf-8"))]
    assert [row[1] for row in rows[1:]] == ["****0001", "****0002", "****0003"]
    assert all(key not in str(rows) for key, _ in ROWS)
    assert rows[3][7] in (1234.5, "1234.5")


def test_a_file_without_a_key_column_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("uid,name\n1,a\n")
    with pytest.raises(UsersFileError, match="no apiKey column"):
        read_users(path)


def test_check_users_command_prints_and_writes_without_logging_a_whole_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rows = ROWS[5:8]  # one earns, one frozen, one unknown
    with RunningSimulator(SimulatorConfig(), clock=SystemClock()) as simulator:  # the CLI signs with the real clock
        for name, value in {
            "OKX_API_KEY": DEFAULT_API_KEY,
            "OKX_SECRET_KEY": DEFAULT_SECRET_KEY,
            "OKX_PASSPHRASE": DEFAULT_PASSPHRASE,
            "OKX_BASE_URL": simulator.base_url,
            "REBATES_DATA_DIR": str(tmp_path / "data"),
        }.items():
            monkeypatch.setenv(name, value)
        caplog.set_level(logging.DEBUG)
        out = tmp_path / "checked.csv"
        source = users_csv(tmp_path / "users.csv", rows)
        result = CliRunner().invoke(app, ["-v", "check-users", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 of 3 users checked (2 with an error in their row)" in result.output
    everything = result.output + caplog.text + out.read_text()
    assert "****0006" in everything
    assert all(key not in everything for key, _ in rows)


EU = SimAccount(api_key="eu-api-key-0001", secret_key="eu-secret-0001", passphrase="eu-pass-0001")
ASIA = SimAccount(api_key="asia-api-key-0002", secret_key="asia-secret-0002", passphrase="asia-pass-0002")


def two_accounts_env(monkeypatch: pytest.MonkeyPatch, simulator: RunningSimulator, tmp_path: Path) -> None:
    """REBATES_ACCOUNTS=eu,asia, each with its own keys, pointing at a simulator serving both."""
    set_env(monkeypatch, accounts_variables(simulator.base_url, tmp_path / "data", {"eu": EU, "asia": ASIA}))


def users_with_accounts(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as output:
        writer = csv.writer(output)
        writer.writerow(["apiKey", "brokerType", "Account"])
        writer.writerows(
            [
                ("sim-user-earns-0001", "api", "EU"),  # eu's user: checked with eu only
                ("sim-user-oauth-0006", "oauth", ""),  # no account: checked with each
                ("sim-user-vip6-0004", "api", "moon"),  # not configured: an error in its row
            ]
        )
    return path


def test_check_users_checks_each_account_in_turn_with_an_account_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SimulatorConfig(accounts=(EU, ASIA))
    with RunningSimulator(config, clock=SystemClock()) as simulator:  # the CLI signs with the real clock
        two_accounts_env(monkeypatch, simulator, tmp_path)
        out = tmp_path / "checked.csv"
        source = users_with_accounts(tmp_path / "users.csv")
        result = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["check-users", str(source), "--out", str(out)])
        only = CliRunner().invoke(
            app, ["check-users", str(source), "--out", str(tmp_path / "eu.csv"), "--account", "eu"]
        )
    assert result.exit_code == 0, result.output
    with out.open(newline="", encoding="utf-8") as written:
        rows = list(csv.DictReader(written))
    assert list(rows[0])[:3] == ["account", "row", "api key"]
    assert [(row["account"], row["row"], row["earns rebate"]) for row in rows] == [
        ("moon", "4", ""),
        ("eu", "2", "yes"),
        ("eu", "3", "yes"),
        ("asia", "3", "yes"),
    ]
    assert "not in REBATES_ACCOUNTS (eu, asia)" in rows[0]["reason"]
    assert only.exit_code == 0, only.output
    with (tmp_path / "eu.csv").open(newline="", encoding="utf-8") as written:
        eu_rows = list(csv.DictReader(written))
    assert "account" not in eu_rows[0]  # one account asked for: no account column
    assert [row["row"] for row in eu_rows] == ["4", "2", "3"]


def test_one_accounts_refused_credentials_do_not_stop_the_others_and_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RunningSimulator(SimulatorConfig(accounts=(EU, ASIA)), clock=SystemClock()) as simulator:
        two_accounts_env(monkeypatch, simulator, tmp_path)
        monkeypatch.setenv("OKX_SECRET_KEY_EU", "wrong-secret-of-eu")
        out = tmp_path / "checked.xlsx"
        source = users_with_accounts(tmp_path / "users.csv")
        result = CliRunner().invoke(app, ["check-users", str(source), "--out", str(out)])
    assert result.exit_code == Exit.OKX_REFUSED, result.output
    assert "account eu:" in result.output and "wrong-secret-of-eu" not in result.output
    sheet = load_workbook(out).worksheets[0]
    values = [tuple(row) for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert [(row[0], row[5]) for row in values[1:]] == [("eu", None), ("eu", None), ("asia", "yes")]
    assert "OKX refused account eu's own credentials" in str(values[1][6])


FORMULA = '=HYPERLINK("http://x","[b]y[/b]")'  # and rich markup, for the table


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_formula_in_an_if_rebate_answer_is_written_inert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    def answer(client: OkxClient, api_key: SecretStr, broker_type: BrokerType | None) -> UserRebateInfo:
        hostile = {"type": "0", "brokerCode": FORMULA, "clientRebateRatio": "0.2"}  # a hostile if-rebate answer
        return UserRebateInfo.model_validate(hostile)

    monkeypatch.setattr(OkxClient, "user_rebate_info", answer)
    for name in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE"):
        monkeypatch.setenv(name, f"{name.lower()}-for-the-test")
    monkeypatch.setenv("REBATES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(console, "width", 300)
    out = tmp_path / f"checked{suffix}"
    result = CliRunner().invoke(
        app, ["check-users", str(users_csv(tmp_path / "users.csv", ROWS[:1])), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert FORMULA in result.output
    if suffix == ".csv":
        (_, row) = list(csv.reader(out.open(encoding="utf-8")))
        assert row[3] == "'" + FORMULA
        assert row[6] == "0.2"
    else:
        (cells,) = load_workbook(out).worksheets[0].iter_rows(min_row=2)
        assert (cells[3].data_type, cells[3].value) == ("s", FORMULA)  # a string, not a formula ("f")
        assert (cells[6].data_type, cells[6].value) == ("n", 0.2)  # numbers stay numbers
