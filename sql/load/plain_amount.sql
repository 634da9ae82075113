-- plain_amount: an amount's text as DECIMAL(38,18) when it is a plain decimal that type holds exactly (at most 20
-- integer digits and 18 places), else error(). DuckDB's own cast rounds past 18 places, so the text is checked
-- first. Created per connection (TEMP) for sql/load/insert_csv.sql's fast path.
CREATE OR REPLACE TEMP MACRO plain_amount(text) AS CASE
    WHEN regexp_full_match(text, '-?[0-9]{1,20}(\.[0-9]{1,18})?') THEN text::DECIMAL(38, 18)
    ELSE error('amount')
END;
