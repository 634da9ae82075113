-- files: archived files (of one window when window_id is not NULL), oldest first.
SELECT file_id, window_id, path, bytes, sha256, format
FROM rebate_files
WHERE %(window_id)s::text IS NULL OR window_id = %(window_id)s::text
ORDER BY first_downloaded_at, file_id;
