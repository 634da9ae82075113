-- One range of a CSV part's rows for load/insert_csv.sql: the data rows after the first `skip`, at most the LIMIT's
-- count (the last range has none), each numbered as in the file. `header = true` after `skip = n` drops line n: the
-- header, or the data row just before the range (the previous range's last). `skip` counts lines and LIMIT rows: the
-- same in a part without quotes or blank lines, which is all pipeline/store/csv_ranges.py cuts. `comment = ''`: left
-- to detect one, DuckDB takes a row that starts with # for a comment and drops it without a word.
SELECT * FROM (SELECT * FROM (
    SELECT $first_row + {skip} - 1 + row_number() OVER () AS source_row, *
    FROM read_csv(
        $path, all_varchar = true, header = true, skip = {skip}, names = $names, delim = ',', quote = '"',
        escape = '"', comment = '', strict_mode = true, null_padding = false
    )
) {limit})
