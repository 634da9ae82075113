-- Lineage: every archived file (path relative to REBATES_DATA_DIR), small, rewritten by every publish; its account
-- is its window's.
CREATE OR REPLACE TEMP VIEW lake_rebate_files AS
SELECT f.file_id, f.window_id, f.path, f.bytes, f.sha256, f.format, f.source_host, f.first_downloaded_at,
       f.last_downloaded_at, f.downloads, coalesce(w.account, 'default') AS account
FROM rebate_files AS f
LEFT JOIN rebate_windows AS w USING (window_id)
ORDER BY f.file_id;
