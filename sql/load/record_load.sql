-- One row of rebate_loads for a load, in the load's own transaction: which file replaced the window's rows, how many
-- rows it held and how many landed (equal, or the load rolled back), its days and both sets of totals as JSON.
INSERT INTO rebate_loads (
    window_id, file_id, loaded_at, rows_in_file, rows_loaded, rows_replaced, min_trade_date, max_trade_date,
    file_totals, loaded_totals, extra_columns, warnings, account
)
VALUES (
    $window_id, $file_id, $loaded_at, $rows_in_file, $rows_loaded, $rows_replaced, $min_trade_date,
    $max_trade_date, $file_totals, $loaded_totals, $extra_columns, $warnings, $account
);
