-- rebate_files: every archived file (path relative to REBATES_DATA_DIR): lineage.
CREATE OR REPLACE VIEW rebate_files AS SELECT * FROM read_parquet(lake_dir() || 'rebate_files/data.parquet');
