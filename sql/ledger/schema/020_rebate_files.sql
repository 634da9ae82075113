-- rebate_files: every file ever downloaded, archived under REBATES_DATA_DIR/raw and kept as the audit trail.
-- Grain: file_id ('api:20240101-20240628@<first 12 hex of sha256>'); the same bytes downloaded again are one row.
CREATE TABLE IF NOT EXISTS rebate_files (
    file_id          VARCHAR PRIMARY KEY,
    window_id        VARCHAR NOT NULL,          -- rebate_windows.window_id
    path             VARCHAR NOT NULL,          -- relative to REBATES_DATA_DIR, e.g. raw/api/20240101_20240628_1a2b3c4d.csv
    bytes            BIGINT NOT NULL,
    sha256           VARCHAR NOT NULL,
    format           VARCHAR NOT NULL,          -- detected from the first bytes: csv | zip | xlsx | xls | unknown
    source_host      VARCHAR NOT NULL,          -- host of the link it came from (never the signed query)
    first_downloaded_at TIMESTAMPTZ NOT NULL,
    last_downloaded_at  TIMESTAMPTZ NOT NULL,
    downloads        INTEGER NOT NULL DEFAULT 1
);
