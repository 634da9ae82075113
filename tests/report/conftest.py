"""Report fixtures: a database holding January 2025 (one day missing) and a week of December for two broker types.

As at OKX, the api files have 14 columns (no uid) and the oauth files 16 (uid and clOrdId)."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, localcontext
from functools import cached_property
from pathlib import Path

import pytest

from pipeline.clock import FakeClock
from pipeline.config import Settings, load_settings
from pipeline.ledger import Ledger, WindowState
from pipeline.report.data import build_report
from pipeline.report.model import Period, Report
from pipeline.report.source_files import SourceFiles
from pipeline.report.statement import build_statements
from pipeline.simulator.files import AMOUNT_COLUMNS, FileSpec, Layout, build_rebate_file, generate_rows
from pipeline.store.ingest import load_by_hand
from pipeline.windows import RebateWindow

REPORT_TZ = timezone(timedelta(hours=8))
"""REBATES_TZ of the fixture database (and the simulator's day): trade_date is the day at UTC+8."""
REPORT_TZ_LABEL = "UTC+08:00"
REPORT_NOW = datetime(2025, 3, 1, 2, tzinfo=UTC)
JANUARY = Period.month(2025, 1)
MISSING_DAY = date(2025, 1, 15)
"""No api window holds this day (oauth's does), so the report must call it missing."""
ORDERS_PER_DAY = 6

SNAKE = {
    "spotTradeAmt": "spot_trade_amt",
    "derivativeTradeAmt": "derivative_trade_amt",
    "fee": "fee",
    "netFee": "net_fee",
    "settlementFee": "settlement_fee",
    "brokerRebate": "broker_rebate",
    "suBrokerRebate": "sub_broker_rebate",
    "userRebate": "user_rebate",
}
AMOUNTS = tuple(SNAKE[column] for column in AMOUNT_COLUMNS)

WINDOWS = (
    RebateWindow("api", date(2024, 12, 26), date(2024, 12, 31)),
    RebateWindow("oauth", date(2024, 12, 26), date(2024, 12, 31)),
    RebateWindow("api", date(2025, 1, 1), date(2025, 1, 14)),
    RebateWindow("api", date(2025, 1, 16), date(2025, 1, 31)),
    RebateWindow("oauth", date(2025, 1, 1), date(2025, 1, 31)),
)


@dataclass(frozen=True)
class SourceRow:
    """One row of a loaded file as the simulator wrote it: exact text turned into Decimal, with its day."""

    broker_type: str
    window_id: str
    broker_code: str
    uid: str | None
    """None in a 14-column (api) file."""
    ord_id: str
    inst_id: str
    trade_date: date
    amounts: dict[str, Decimal]


@dataclass(frozen=True)
class ReportDatabase:
    """A loaded database and the files it was loaded from, to sum every amount independently of it."""

    path: Path
    files: tuple[tuple[RebateWindow, FileSpec], ...]
    sources: SourceFiles
    """Where the archived files are: the reconciliation reads them again."""

    @cached_property
    def source_rows(self) -> tuple[SourceRow, ...]:
        """Every row of every loaded file, from the generator's source text."""
        rows = []
        for window, spec in self.files:
            for row in generate_rows(spec):
                day = datetime.fromtimestamp(int(row["ts"]) // 1000, REPORT_TZ).date()
                amounts = {SNAKE[column]: Decimal(row[column]) for column in AMOUNT_COLUMNS}
                uid = row["uid"] if spec.layout is Layout.COLUMNS_16 else None
                rows.append(
                    SourceRow(window.broker_type, window.window_id, row["brokerCode"], uid, row["ordId"],
                              row["instId"], day, amounts)
                )  # fmt: skip
        return tuple(rows)

    def rows_in(self, period: Period, broker_code: str | None = None) -> list[SourceRow]:
        """The source rows of the period's days (and one broker code, if given)."""
        return [
            row
            for row in self.source_rows
            if period.start <= row.trade_date <= period.end and broker_code in (None, row.broker_code)
        ]

    @property
    def broker_codes(self) -> list[str]:
        """Every broker code in the loaded files, sorted."""
        return sorted({row.broker_code for row in self.source_rows})

    def copy_to(self, directory: Path) -> Path:
        """A private copy of the database file, for a test that changes it (the archive stays shared)."""
        target = directory / "rebates.duckdb"
        shutil.copyfile(self.path, target)
        return target


SOURCE_LIMIT = 1 << 30
"""REBATES_MAX_UNZIPPED_BYTES for the fixtures' archives (their files are small CSVs)."""


def sources_in(data_dir: Path) -> SourceFiles:
    """How the reports of a fixture database read its archive again."""
    return SourceFiles(data_dir, REPORT_TZ, SOURCE_LIMIT)


def totals(rows: Iterable[SourceRow]) -> dict[str, Decimal]:
    """Every amount summed with Decimal, in a context wide enough never to round."""
    rows = list(rows)
    with localcontext() as context:
        context.prec = 80
        return {name: sum((row.amounts[name] for row in rows), Decimal(0)) for name in AMOUNTS}


def make_report(
    db_path: Path,
    period: Period = JANUARY,
    broker_code: str | None = None,
    account: str | None = None,
    sources: SourceFiles | None = None,
) -> Report:
    """The report of `period` from `db_path` (its archive in the data directory beside it), at the fixed time."""
    return build_report(
        db_path,
        period,
        sources_from=sources or sources_in(db_path.parent),
        broker_code=broker_code,
        tz_label=REPORT_TZ_LABEL,
        now=REPORT_NOW,
        account=account,
    )


def load_files(root: Path, files: Iterable[tuple[RebateWindow, bytes]]) -> Settings:
    """The settings of a database and archive under `root / "data"` (REBATES_TZ UTC+8) holding `files`, each loaded
    by hand at `REPORT_NOW` as its window, in the ledger of the window's account."""
    settings = load_settings(rebates_data_dir=root / "data", rebates_db=root / "data" / "rebates.duckdb",
                             rebates_tz=REPORT_TZ)  # fmt: skip
    clock = FakeClock(REPORT_NOW)
    for window, content in files:
        source = root / f"{window.window_id.replace(':', '_')}.csv"
        source.write_bytes(content)
        ledger = Ledger(settings.rebates_db, clock, account=window.account)
        outcome = load_by_hand(settings, ledger, source, window, clock)
        assert outcome.state is WindowState.LOADED, outcome.reason
    return settings


def simulated_database(root: Path, files: Iterable[tuple[RebateWindow, FileSpec]]) -> ReportDatabase:
    """A database holding the simulator's file of each spec, loaded by hand as its window (`load_files`)."""
    files = tuple(files)
    settings = load_files(root, ((window, build_rebate_file(spec)) for window, spec in files))
    return ReportDatabase(settings.rebates_db, files, sources_in(settings.rebates_data_dir))


@pytest.fixture(scope="session")
def report_db(tmp_path_factory: pytest.TempPathFactory) -> ReportDatabase:
    """January 2025 for api and oauth brokers (api misses 15 January) plus 26-31 December, loaded by hand."""
    specs = [
        FileSpec(window.begin, window.end, window.broker_type,
                 layout=Layout.COLUMNS_14 if window.broker_type == "api" else Layout.COLUMNS_16,
                 orders_per_day=ORDERS_PER_DAY, day_tz=REPORT_TZ)
        for window in WINDOWS
    ]  # fmt: skip
    return simulated_database(tmp_path_factory.mktemp("report_db"), zip(WINDOWS, specs, strict=True))


@pytest.fixture(scope="session")
def january_report(report_db: ReportDatabase) -> Report:
    """The report of January 2025, every broker code, from `report_db`."""
    return make_report(report_db.path)


def make_statements(
    db_path: Path,
    period: Period = JANUARY,
    sources: SourceFiles | None = None,
    account: str | None = None,
    broker_code: str | None = None,
) -> list[Report]:
    """The statements of `period` from `db_path` (one account's, one code's), at the fixed time."""
    return build_statements(
        db_path,
        period,
        sources_from=sources or sources_in(db_path.parent),
        tz_label=REPORT_TZ_LABEL,
        now=REPORT_NOW,
        account=account,
        broker_code=broker_code,
    )


def distinct_users(rows: Iterable[SourceRow]) -> int:
    """How many distinct uids the rows carry (rows of 14-column files carry none)."""
    return len({row.uid for row in rows if row.uid is not None})


def amount_name(key: str) -> str:
    """An amount's column name in a report table: `broker_rebate_usdt`."""
    return f"{key}_usdt"
