-- rebate_files (PostgreSQL state): every archived download; see sql/schema/020_rebate_files.sql. Grain: file_id.
CREATE TABLE IF NOT EXISTS rebate_files (
    file_id              TEXT PRIMARY KEY,
    window_id            TEXT NOT NULL,
    path                 TEXT NOT NULL,
    bytes                BIGINT NOT NULL,
    sha256               TEXT NOT NULL,
    format               TEXT NOT NULL,
    source_host          TEXT NOT NULL,
    first_downloaded_at  TIMESTAMPTZ NOT NULL,
    last_downloaded_at   TIMESTAMPTZ NOT NULL,
    downloads            INTEGER NOT NULL DEFAULT 1
);

CREATE INDEX IF NOT EXISTS rebate_files_by_window ON rebate_files (window_id);
