-- rebate_loads: every load with what its file held and what landed (the reconciliation trail).
CREATE OR REPLACE VIEW rebate_loads AS SELECT * FROM read_parquet(lake_dir() || 'rebate_loads/data.parquet');
