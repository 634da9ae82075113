-- files: archived files (of one window when $window_id is not NULL), oldest first.
SELECT file_id, window_id, path, bytes, sha256, format
FROM rebate_files
WHERE CAST($window_id AS VARCHAR) IS NULL OR window_id = CAST($window_id AS VARCHAR)
ORDER BY first_downloaded_at, file_id;
