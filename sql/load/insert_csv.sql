-- Insert a CSV part straight from its text, read by DuckDB itself: the fast path for a file in OKX's usual shape.
-- Every value is checked as text before its cast, by the row rules of pipeline/store/rows.py (each {rules.<name>} is
-- filled from there, as a literal, by rows.fast_path_sql): a value that breaks one (or a row outside the window)
-- stops the statement with error(), and the loader then rolls back and reads the file exactly with
-- pipeline/store/rows.py, which loads it or names the bad row. So this path accepts a subset of what the exact reader
-- does: the same rules, and a stricter `ts` where rows.TS says so.
-- The row ranges are one or more load/csv_range.sql joined by UNION ALL (pipeline/store/csv_ranges.py): ranges of the
-- part's rows read side by side, each numbered from its own first row, so the read uses every thread DuckDB has.
-- $path, $names (column names in the file's order), $first_row (the file's number of the part's first row),
-- $offset_ms (REBATES_TZ as a fixed offset), $first_ts_ms, $last_ts_ms (the times whose trade date is in the window
-- and that are plausible: rows.fast_path_ts_range), lineage as insert_details.sql.
INSERT INTO rebate_details
SELECT
    $broker_type, broker_code, level, uid, inst_id, inst_type(inst_id), ord_id, cl_ord_id,
    spot_trade_amt, derivative_trade_amt, fee, net_fee, settlement_fee,
    broker_rebate, sub_broker_rebate, user_rebate,
    affiliated, make_timestamp_ms(ts_ms)::TIMESTAMPTZ,
    CASE WHEN ts_ms BETWEEN $first_ts_ms AND $last_ts_ms
         THEN make_timestamp_ms(ts_ms + $offset_ms)::DATE ELSE error('ts outside the window') END,
    NULL,
    $window_id, $file_id, source_row, $loaded_at, $account
FROM (
    SELECT
        source_row,
        broker_code,
        nullif(level, '') AS level,
        nullif(uid, '') AS uid,
        inst_id,
        CASE WHEN regexp_full_match(ord_id, {rules.ord_id}) THEN ord_id ELSE error('ordId') END AS ord_id,
        nullif(cl_ord_id, '') AS cl_ord_id,
        plain_amount(spot_trade_amt) AS spot_trade_amt,
        plain_amount(derivative_trade_amt) AS derivative_trade_amt,
        plain_amount(fee) AS fee,
        plain_amount(net_fee) AS net_fee,
        plain_amount(settlement_fee) AS settlement_fee,
        plain_amount(broker_rebate) AS broker_rebate,
        plain_amount(sub_broker_rebate) AS sub_broker_rebate,
        plain_amount(user_rebate) AS user_rebate,
        CASE lower(affiliated) WHEN {rules.affiliated_true} THEN true WHEN {rules.affiliated_false} THEN false
            ELSE error('affiliated') END
            AS affiliated,
        CASE WHEN regexp_full_match(ts, {rules.ts}) THEN ts::BIGINT ELSE error('ts') END AS ts_ms
    FROM (
        SELECT NULL::VARCHAR AS uid, NULL::VARCHAR AS cl_ord_id, NULL::BIGINT AS source_row WHERE false
        UNION ALL BY NAME
        SELECT * FROM ({row_ranges})
    )
);
