"""Commands that report: report, statements and sql."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.report.model import Period, ReportFormat
    from pipeline.store.analysts import QueryResult


from pipeline.cli.base import (
    AccountOption,
    Exit,
    app,
    clock_from_env,
    console,
    err_console,
    exit_codes,
    fail,
    parse_day,
    settings_or_exit,
)


def report_options(
    month: str | None, date_from: str | None, date_to: str | None, formats: str
) -> tuple[Settings, Period, tuple[ReportFormat, ...]]:
    """The settings, the period and the formats `report` and `statements` are asked for (BadParameter if malformed)."""
    from pipeline.report.run import parse_formats

    settings = settings_or_exit()
    period = report_period(month, date_from, date_to, settings)
    try:
        return settings, period, parse_formats(formats)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def report_period(month: str | None, date_from: str | None, date_to: str | None, settings: Settings) -> Period:
    """The period `--month` or `--from/--to` name (default: last month in REBATES_TZ); BadParameter if malformed."""
    from pipeline.report.model import Period

    first, last = parse_day(date_from), parse_day(date_to)
    try:
        if month is not None and (first or last):
            raise ValueError("give --month or --from/--to, not both")
        if (first is None) != (last is None):
            raise ValueError("--from and --to go together")
        if first is not None and last is not None:
            return Period(first, last)
        if month is not None:
            return Period.parse_month(month)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return Period.last_ended_month(clock_from_env(settings).now(), settings.rebates_tz)


def check_report_options(settings: Settings, account: str | None, out: Path) -> str | None:
    """Stop with exit 2 when there is no database, the account is not configured or `--out` cannot be written."""
    from pipeline.config import check_writable_dir

    if not Path(settings.rebates_db).exists():
        fail(Exit.CONFIG, f"no database at {settings.rebates_db} (REBATES_DB): run `rebates sync` first")
    chosen = settings.account_name(account) if account is not None else None
    check_writable_dir("--out", out)
    return chosen


@contextmanager
def known_broker_code() -> Iterator[None]:
    """A broker code no loaded file names is a usage error (exit 2) whose message lists the known codes."""
    from pipeline.report.data import UnknownBrokerCode

    try:
        yield
    except UnknownBrokerCode as exc:
        fail(Exit.CONFIG, str(exc))


@app.command("report")
def report(
    month: Annotated[str | None, typer.Option(help="The month, YYYY-MM (default: last month).")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD), with --to.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD), with --from.")] = None,
    broker_code: Annotated[str | None, typer.Option(help="Only this broker code.")] = None,
    account: AccountOption = None,
    out: Annotated[Path | None, typer.Option(help="Folder to write to (default REBATES_DATA_DIR/reports).")] = None,
    formats: Annotated[str, typer.Option("--format", help="Any of xlsx,csv,html.")] = "xlsx,csv,html",
) -> None:
    """Write the commission report for a month or a day range: an Excel workbook, CSV tables and one HTML page.

    Days are days in REBATES_TZ. Each report compares with the previous period, shows the last 12 months, and
    reconciles its figures with the loaded OKX files, read again from the archive. Without --account the report
    covers every account together, with a table by account when more than one has rows; with it, that account
    alone, named in the file names (commission_eu_2025-01.xlsx) and the heading. Prints the period, the net fee and
    broker rebate, whether it reconciled, any warnings, then the files.

    Examples:

      rebates report --month 2025-01

      rebates report --month 2025-01 --account eu

      rebates report --from 2025-01-01 --to 2025-01-15 --broker-code 656204a3b0e9BCDE --format html
    """
    from pipeline.report.run import make_report, write_report
    from pipeline.report.words import summary_lines

    settings, period, chosen = report_options(month, date_from, date_to, formats)
    with exit_codes(), known_broker_code():
        scope = check_report_options(settings, account, out or settings.layout.reports)
        made = make_report(settings, period, broker_code=broker_code, clock=clock_from_env(settings), account=scope)
        written = write_report(settings, made, out_dir=out, formats=chosen)
    for line in summary_lines(made):
        console.print(line, highlight=False, markup=False)
    for path in written:
        console.print(f"  {path}", highlight=False, markup=False)


@app.command("statements")
def statements(
    month: Annotated[str | None, typer.Option(help="The month, YYYY-MM (default: last month).")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD), with --to.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD), with --from.")] = None,
    account: AccountOption = None,
    broker_code: Annotated[str | None, typer.Option(help="Only this broker code's statement.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder to write to (default REBATES_DATA_DIR/reports/statements_<period>).")
    ] = None,
    formats: Annotated[str, typer.Option("--format", help="Any of xlsx,csv,html.")] = "xlsx,csv,html",
) -> None:
    """Write one commission statement per broker code with activity: xlsx, HTML and CSV, and manifest.csv.

    Each statement holds only its code's rows and totals (every day, its users, its instrument types) and its own
    reconciliation: every day, the code's rows in the loaded OKX files, read again, against the statement's. The
    code is in every file name. manifest.csv beside them has one row per statement: the code, the period, orders,
    every amount's exact total, whether it reconciled, and each file's name and SHA-256.

    Examples:

      rebates statements --month 2025-01

      rebates statements --month 2025-01 --account eu --out /srv/payouts/2025-01

      rebates statements --from 2025-01-01 --to 2025-01-15 --broker-code 656204a3b0e9BCDE
    """
    from pipeline.report.run import write_statements
    from pipeline.report.words import statement_line

    settings, period, chosen = report_options(month, date_from, date_to, formats)
    with exit_codes(), known_broker_code():
        scope = check_report_options(settings, account, out or settings.layout.reports)
        run = write_statements(
            settings, period, account=scope, broker_code=broker_code, out_dir=out, formats=chosen,
            clock=clock_from_env(settings),
        )  # fmt: skip
    console.print(f"statements {period.label}: {period.words}", highlight=False, markup=False)
    if not run.statements:
        console.print(f"  no broker code has rows in {period.label}: no statement written", highlight=False)
    for written in run.statements:
        console.print(f"  {statement_line(written.report)}", highlight=False, markup=False)
    said = dict.fromkeys(  # each once, however many statements share it (a day missing for every api code)
        [f"incomplete: {line}" for written in run.statements for line in written.report.incomplete]
        + [f"warning: {warning}" for written in run.statements for warning in written.report.warnings]
    )
    for line in said:
        console.print(f"  {line}", highlight=False, markup=False)
    console.print(f"{len(run.statements)} statement(s) in {run.directory}", highlight=False, markup=False)
    console.print(f"  manifest: {run.manifest}", highlight=False, markup=False)


class SqlFormat(StrEnum):
    """How `rebates sql -c` prints a result."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


@app.command("sql")
def sql(
    command: Annotated[
        str | None, typer.Option("-c", "--command", help="Run this SQL, print the result, exit.")
    ] = None,
    output: Annotated[SqlFormat, typer.Option("--format", help="table, csv or json.")] = SqlFormat.TABLE,
) -> None:
    """Query the analysts' lake read-only, with nothing else installed (an interactive prompt without -c).

    It opens the analysts' entry point (REBATES_DATA_DIR/lake/analysts.duckdb): rebate_details, rebate_orders,
    rebate_windows, coverage and the daily_commission_by_* views, read from the Parquet lake, while the pipeline runs.
    Amounts print exactly (csv and json as decimal text). It reads the lake and nothing else: queries only (SELECT,
    FROM, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN), no file outside the lake, no write, ATTACH or setting.

    Examples:

      rebates sql -c "SELECT inst_type, sum(broker_rebate) FROM rebate_details GROUP BY ALL"

      rebates sql -c "FROM coverage WHERE NOT complete" --format csv > incomplete.csv

      rebates sql
    """
    from pipeline.store.analysts import NoEntryPointError, QueryError, explain, open_entry_point, run_query

    settings = settings_or_exit()
    try:
        connection = open_entry_point(settings.layout.analysts)
    except NoEntryPointError as exc:
        fail(Exit.CONFIG, str(exc))
    with connection:
        if command is not None:
            try:
                result = run_query(connection, command)
            except QueryError as exc:
                fail(Exit.UNEXPECTED, explain(exc))
            print_result(result, output)
            return
        console.print(
            f"{settings.layout.analysts} (read-only). End a statement with ;  Quit with .quit or Ctrl-D.",
            highlight=False,
        )
        for statement in read_statements():
            try:
                print_result(run_query(connection, statement), SqlFormat.TABLE)
            except QueryError as exc:
                err_console.print(f"[red]error:[/] {escape(explain(exc))}", highlight=False)


def read_statements() -> Iterator[str]:
    """Statements typed at the prompt, each ended by `;` (possibly over several lines), until .quit or end of input."""
    lines: list[str] = []
    while True:
        try:
            line = input("rebates> " if not lines else "    ...> ")
        except EOFError:
            return
        if not lines and line.strip() in {".quit", ".exit"}:
            return
        lines.append(line)
        if line.rstrip().endswith(";"):
            yield "\n".join(lines)
            lines = []


def print_result(result: QueryResult, output: SqlFormat) -> None:
    """A query's result on stdout: a table for people, or CSV / JSON with exact decimal text for programs."""
    from pipeline.store.analysts import as_csv, as_json, text

    if output is SqlFormat.CSV:
        console.file.write(as_csv(result))
    elif output is SqlFormat.JSON:
        console.file.write(as_json(result) + "\n")
    elif result.columns:
        table = Table(*result.columns)
        for row in result.rows:
            table.add_row(*(escape(text(value)) if value is not None else "NULL" for value in row))
        console.print(table, highlight=False)
        console.print(f"{len(result.rows):,} row(s)", highlight=False)
