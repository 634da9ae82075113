-- Lineage: every archived file (path relative to REBATES_DATA_DIR), small, rewritten by every publish.
CREATE OR REPLACE TEMP VIEW lake_rebate_files AS
SELECT file_id, window_id, path, bytes, sha256, format, source_host, first_downloaded_at, last_downloaded_at, downloads
FROM rebate_files
ORDER BY file_id;
