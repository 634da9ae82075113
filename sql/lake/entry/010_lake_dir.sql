-- lake_dir(): the lake's folder as this entry point's views read it, ending in '/' ('' is the current directory).
-- It is the folder this database file is in, found from DuckDB's default temp_directory ('<this file>.tmp'), so the
-- folder can be moved or shared and any DuckDB 1.4+ that opens this file finds its Parquet next to it. When this
-- file is ATTACHed to another database, or temp_directory is set, say where the lake is:
-- SET VARIABLE rebates_lake = '/path/to/lake';
CREATE OR REPLACE MACRO lake_dir() AS coalesce(
    rtrim(getvariable('rebates_lake'), '/') || '/',
    regexp_replace(current_setting('temp_directory'), '[^/\\]*$', '')
);
