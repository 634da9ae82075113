-- rebate_windows: the ledger, one row per window with its state (loaded: its rows are in the lake).
CREATE OR REPLACE VIEW rebate_windows AS SELECT * FROM read_parquet(lake_dir() || 'rebate_windows/data.parquet');
