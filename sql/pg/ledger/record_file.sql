-- record_file: add an archived file, or count one more download of the same bytes.
INSERT INTO rebate_files (
    file_id, window_id, path, bytes, sha256, format, source_host, first_downloaded_at, last_downloaded_at
)
VALUES (%(file_id)s, %(window_id)s, %(path)s, %(bytes)s, %(sha256)s, %(format)s, %(source_host)s, %(now)s, %(now)s)
ON CONFLICT (file_id) DO UPDATE SET
    last_downloaded_at = excluded.last_downloaded_at,
    downloads = rebate_files.downloads + 1;
