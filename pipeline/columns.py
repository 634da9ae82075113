"""The rebate file's amount columns as the tables name them, shared by the parser, the loader and the reports."""

from __future__ import annotations

AMOUNT_COLUMNS: tuple[str, ...] = (
    "spot_trade_amt",
    "derivative_trade_amt",
    "fee",
    "net_fee",
    "settlement_fee",
    "broker_rebate",
    "sub_broker_rebate",
    "user_rebate",
)
"""Every amount, in the file's order: exact DECIMAL(38,18) in rebate_details; the SQL macro amount_columns() agrees."""
