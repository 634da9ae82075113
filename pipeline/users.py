"""The user rebate check: read users' API keys from a file, ask OKX's if-rebate for each, write what it says."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr

from pipeline.clock import Clock
from pipeline.config import DEFAULT_ACCOUNT, Settings, select_accounts
from pipeline.domain import BrokerType
from pipeline.formulas import neutralised, write_text
from pipeline.okx.client import OkxClient, UserRebateInfo, mask_key
from pipeline.okx.errors import OkxAuthError, OkxError, OkxRateLimitError
from pipeline.okx.throttle import GetLimiter, open_limiter
from pipeline.okx.user_throttle import IfRebateLimiter

log = logging.getLogger(__name__)

KEY_HEADERS = {"apikey", "key", "userapikey"}
"""Headers of the API key column, compared lower-case without spaces, `_` or `-` (`apiKey`, `API key`, `api_key`)."""

BROKER_TYPE_HEADERS = {"brokertype", "type"}
"""Headers of the optional broker type column (`api` or `oauth`)."""

ACCOUNT_HEADERS = {"account", "brokeraccount"}
"""Headers of the optional account column: the broker account (in REBATES_ACCOUNTS) a user trades under."""

TYPE_REASONS = {
    "0": "earns the broker rebate",
    "1": "no rebate: the broker identification has expired (renew it with OKX)",
    "2": "no rebate: a VIP4/5 user whose monthly rebate has reached the cap",
    "3": "no rebate: the user's fee level is VIP6 or above",
    "4": "no rebate: an MSA (managed sub-account) account",
}
"""OKX's `type` in words: 0-3 from the reference, 4 from newer docs."""

USER_ERRORS = {
    "50014": "the file gave no API key for this user",
    "50044": "this broker is both an API and an OAuth broker: give this user's broker type (api or oauth) in the "
    "file's brokerType column",
    "53004": "the user's account is frozen on OKX",
    "53010": "OKX does not know this API key as a user of this broker (or of this broker type): check the key and "
    "its brokerType",
    "53013": "the broker's key may not use this API: grant it Read permission on OKX",
}
"""What an OKX refusal of one user's check means, and what to do, by code."""

COLUMNS = (
    "row",
    "api key",
    "broker type",
    "broker code",
    "earns rebate",
    "reason",
    "client rebate ratio",
    "last monthly rebate (VIP4/5)",
    "affiliated",
)
"""The result's columns, in the table and in the file written (after `account` when several accounts are checked)."""


def columns(with_account: bool) -> tuple[str, ...]:
    """The result's columns, with the account first when several accounts are checked."""
    return ("account", *COLUMNS) if with_account else COLUMNS


class UsersFileError(ValueError):
    """The users file cannot be read as a table of API keys; the message says what to change."""


@dataclass(frozen=True)
class UserKey:
    """One user to check: the file's row number, the key (secret), and the broker type the row gives."""

    row: int
    api_key: SecretStr
    broker_type: BrokerType | None
    problem: str | None = None
    """Why this row cannot be checked (a broker type that is neither api nor oauth), or None."""
    account: str | None = None
    """The broker account the file's account column gives (lower-case), or None: checked with every account."""


@dataclass(frozen=True)
class UserCheck:
    """What OKX said about one user: only the key's last 4 characters are kept."""

    row: int
    masked_key: str
    broker_type: BrokerType | None
    info: UserRebateInfo | None
    error: str | None = None
    account: str = DEFAULT_ACCOUNT

    @property
    def earns(self) -> bool | None:
        """Whether the broker earns a rebate on this user (None when OKX gave no answer)."""
        return None if self.info is None else self.info.type == "0"

    @property
    def reason(self) -> str:
        """OKX's `type` in words, or why there is no answer."""
        if self.info is None:
            return self.error or ""
        return TYPE_REASONS.get(self.info.type, f"type {self.info.type}: not in OKX's docs; ask OKX what it means")

    def cells(self, with_account: bool = False) -> tuple[str | int | Decimal | None, ...]:
        """The row as written: text, numbers and Decimals (empty when OKX left a field empty); `columns` order."""
        info = self.info
        return ((self.account,) if with_account else ()) + (
            self.row,
            self.masked_key,
            self.broker_type.value if self.broker_type else "",
            info.broker_code if info else "",
            "" if self.earns is None else ("yes" if self.earns else "no"),
            self.reason,
            info.client_rebate_ratio if info else None,
            info.last_rebate if info else None,
            "" if info is None or info.affiliated is None else ("yes" if info.affiliated else "no"),
        )


def read_users(path: Path) -> list[UserKey]:
    """The users in a CSV or xlsx file: a header row with an API key column and optionally a brokerType column."""
    if not path.is_file():
        raise UsersFileError(f"{path}: no such file; give a .csv or .xlsx file with an apiKey column")
    rows = _xlsx_rows(path) if path.suffix.lower() in {".xlsx", ".xlsm"} else _csv_rows(path)
    if not rows:
        raise UsersFileError(f"{path} is empty: it needs a header row with an apiKey column, then one user a row")
    headers = [_header(cell) for cell in rows[0]]
    key_column = next((index for index, name in enumerate(headers) if name in KEY_HEADERS), None)
    if key_column is None:
        raise UsersFileError(f"{path}: no apiKey column in the header row (found {len(headers)} columns)")
    type_column = next((index for index, name in enumerate(headers) if name in BROKER_TYPE_HEADERS), None)
    account_column = next((index for index, name in enumerate(headers) if name in ACCOUNT_HEADERS), None)
    users = []
    for number, row in enumerate(rows[1:], start=2):
        key = _cell(row, key_column)
        if not key:
            continue
        raw_type = _cell(row, type_column).lower() if type_column is not None else ""
        problem = None
        broker_type = None
        if raw_type:
            try:
                broker_type = BrokerType(raw_type)
            except ValueError:
                problem = f"brokerType {raw_type!r} is neither api nor oauth"
        account = _cell(row, account_column).lower() or None
        users.append(UserKey(number, SecretStr(key), broker_type, problem, account))
    return users


def check_users(
    settings: Settings,
    clock: Clock,
    users: Sequence[UserKey],
    *,
    progress: Callable[[str], None] | None = None,
) -> list[UserCheck]:
    """Ask OKX's if-rebate about each user, at most 2 a second across every process sharing REBATES_DATA_DIR.

    A row without a broker type uses REBATES_BROKER_TYPES when that names one type. An error for one user is
    recorded in its row and the next user is checked; only a refusal of the broker's own credentials stops it.
    """
    say = progress or (lambda message: None)
    limiter = open_limiter(settings, clock, kind=IfRebateLimiter)
    configured = settings.rebates_broker_types
    default_type = configured[0] if len(configured) == 1 else None
    checks = []
    with closing(limiter), OkxClient(settings, clock=clock, before_request=limiter.before_request) as client:
        for user in users:
            masked = mask_key(user.api_key.get_secret_value())
            broker_type = user.broker_type or default_type
            if user.problem is not None:
                checks.append(UserCheck(user.row, masked, broker_type, None, user.problem))
                continue
            say(f"checking row {user.row} ({masked})")
            checks.append(_check(client, limiter, user, masked, broker_type))
    return checks


def check_accounts_users(
    settings: Settings,
    clock: Clock,
    users: Sequence[UserKey],
    *,
    account: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[UserCheck], dict[str, str]]:
    """`check_users` for each account in turn (`account` alone, or every configured one): the checks, account by
    account, and each account whose own credentials OKX refused, with why.

    A row with an account column is checked only with that account (an account not configured is an error in its
    row); a row without one with every account checked. With one account a refusal of its credentials is raised as
    `check_users` raises it; with several, that account's rows say so and the next account is checked.
    """
    chosen = select_accounts(settings, account)
    names = [item.rebates_account for item in chosen]
    checks: list[UserCheck] = []
    refused: dict[str, str] = {}
    for user in users:
        if user.account is not None and user.account not in settings.account_names:
            problem = f"account {user.account!r} is not in REBATES_ACCOUNTS ({', '.join(settings.account_names)})"
            masked = mask_key(user.api_key.get_secret_value())
            checks.append(UserCheck(user.row, masked, user.broker_type, None, problem, user.account))
    for item in chosen:
        name = item.rebates_account
        mine = [user for user in users if user.account in (None, name)]
        try:
            found = check_users(item, clock, mine, progress=progress)
        except OkxAuthError as exc:
            if len(names) == 1:
                raise
            refused[name] = str(exc)
            found = [
                UserCheck(
                    user.row,
                    mask_key(user.api_key.get_secret_value()),
                    user.broker_type,
                    None,
                    f"not checked: OKX refused account {name}'s own credentials",
                )
                for user in mine
            ]
        checks += [replace(check, account=name) for check in found]
    return checks, refused


def _check(
    client: OkxClient, limiter: GetLimiter, user: UserKey, masked: str, broker_type: BrokerType | None
) -> UserCheck:
    """One user's check; a 50011 fills the limiter's second and asks once more."""
    for attempt in range(2):
        try:
            info = client.user_rebate_info(user.api_key, broker_type)
        except OkxAuthError:
            raise
        except OkxRateLimitError as exc:
            limiter.penalize()
            if attempt == 0:
                continue
            return UserCheck(user.row, masked, broker_type, None, f"rate limited twice ({exc.code}): run it again")
        except OkxError as exc:
            log.info("row %d (%s): %s", user.row, masked, exc)
            reason = USER_ERRORS.get(exc.code or "", str(exc))
            return UserCheck(user.row, masked, broker_type, None, f"{reason} (OKX code {exc.code})")
        return UserCheck(user.row, masked, broker_type, info)
    raise AssertionError("unreachable: the loop returns")


def write_checks(checks: Sequence[UserCheck], path: Path, *, with_account: bool = False) -> Path:
    """Write the checks as .xlsx (typed numbers, frozen header, filters) or .csv, by `path`'s suffix.

    Text comes from OKX (a broker code, an error) and is written inert, as the reports write theirs: a CSV cell a
    spreadsheet would run as a formula starts with `'`, an xlsx text cell is a string whatever it starts with.
    """
    header = columns(with_account)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        with path.open("w", newline="", encoding="utf-8") as output:
            writer = csv.writer(output)
            writer.writerow(header)
            writer.writerows(
                [neutralised(cell) if isinstance(cell, str) else "" if cell is None else cell for cell in row]
                for row in (check.cells(with_account) for check in checks)
            )
        return path
    if path.suffix.lower() != ".xlsx":
        raise UsersFileError(f"{path}: the result is written as .xlsx or .csv; name the file with one of those")
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "User rebate check"
    sheet.append(header)
    for row, check in enumerate(checks, start=2):
        for column, value in enumerate(check.cells(with_account), start=1):
            if isinstance(value, str):
                write_text(sheet.cell(row=row, column=column), value)
            else:
                sheet.cell(row=row, column=column, value=value)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    widths = ((10,) if with_account else ()) + (6, 12, 12, 22, 13, 70, 20, 28, 11)
    for letter, width in zip("ABCDEFGHIJ", widths, strict=False):
        sheet.column_dimensions[letter].width = width
    book.save(path)
    return path


def _header(value: object) -> str:
    return "".join(str(value or "").lower().split()).replace("_", "").replace("-", "")


def _cell(row: Sequence[object], column: int | None) -> str:
    if column is None or column >= len(row) or row[column] is None:
        return ""
    return str(row[column]).strip()


def _csv_rows(path: Path) -> list[list[object]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as source:
            return [list(row) for row in csv.reader(source)]
    except UnicodeDecodeError:
        raise UsersFileError(f"{path} is not UTF-8 text: save it as CSV (UTF-8) or as .xlsx") from None


def _xlsx_rows(path: Path) -> list[list[object]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        what = type(exc).__name__
        raise UsersFileError(f"{path} does not open as a workbook ({what}): save it again as .xlsx") from None
    try:
        sheet = book.worksheets[0]
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()
