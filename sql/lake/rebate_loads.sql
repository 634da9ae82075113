-- The reconciliation trail: every load with what its file held and what landed (totals as exact decimal text).
CREATE OR REPLACE TEMP VIEW lake_rebate_loads AS
SELECT load_id, window_id, file_id, loaded_at, rows_in_file, rows_loaded, rows_replaced, min_trade_date,
       max_trade_date, CAST(file_totals AS VARCHAR) AS file_totals, CAST(loaded_totals AS VARCHAR) AS loaded_totals,
       extra_columns, warnings, account
FROM rebate_loads
ORDER BY load_id;
