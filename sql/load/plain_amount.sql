-- plain_amount: an amount's text as DECIMAL(38,18) when that type holds its value exactly (at most 20 integer digits
-- and 18 places, zeros at either end aside), else error(). Created per connection (TEMP) for sql/load/insert_csv.sql's
-- fast path. It takes the texts the exact reader takes (pipeline/store/rows.py's AMOUNT rule, whose patterns and
-- limits fill each {rules.<name>}): a decimal with an optional sign and point, maybe in scientific notation
-- (`7.7395e-05`, as Python and many exporters write small numbers), `+1.5`, `.5`, `5.`, `007.50`.
-- A plain decimal (nearly every value) is cast as it is. Any other number is first written as a plain decimal by
-- moving its point in the text (shifted_amount), and cast only when that fits: DuckDB's own cast of `1e-19` or
-- `1.5e-18` rounds (to 0 and 2e-18), so its exponent arithmetic is never relied on, and a value that would need
-- rounding is refused. CASE evaluates a branch only on the rows that reach it: a plain value costs one regex.

-- The digits left and right of the point, without the zeros that do not count, as one DECIMAL(38,18) if it holds them.
CREATE OR REPLACE TEMP MACRO fitted_amount(sign, whole, fraction) AS CASE
    WHEN length(whole) <= {rules.max_integer_digits} AND length(fraction) <= {rules.max_decimal_places}
        THEN (sign || coalesce(nullif(whole, ''), '0') || CASE WHEN fraction = '' THEN '' ELSE '.' || fraction END)
            ::DECIMAL(38, 18)
    ELSE error('amount')
END;

-- `digits` with the point after the first `point` of them (before them, when it is 0 or less): zeros are added
-- where the point moved past the digits.
CREATE OR REPLACE TEMP MACRO shifted_amount(sign, digits, point) AS fitted_amount(
    sign,
    ltrim(CASE WHEN point <= 0 THEN '' ELSE left(digits || repeat('0', greatest(point - length(digits), 0)), point) END,
          '0'),
    rtrim(CASE WHEN point <= 0 THEN repeat('0', -point) || digits ELSE substr(digits, point + 1) END, '0')
);

-- An exponent's text as a number, NULL past the rule's largest (NULL makes fitted_amount refuse).
CREATE OR REPLACE TEMP MACRO amount_exponent(text) AS CASE
    WHEN text = '' THEN 0 WHEN abs(try_cast(text AS INTEGER)) <= {rules.max_exponent} THEN try_cast(text AS INTEGER)
END;

CREATE OR REPLACE TEMP MACRO plain_amount(text) AS CASE
    WHEN regexp_full_match(text, {rules.amount_as_written}) THEN text::DECIMAL(38, 18)
    WHEN regexp_full_match(text, {rules.amount}) THEN list_transform(
        [regexp_extract(text, {rules.amount_parts}, ['sign', 'whole', 'fraction', 'exponent'])],
        lambda p: list_transform(
            [length(p.whole) + amount_exponent(p.exponent)],
            lambda point: shifted_amount(CASE WHEN p.sign = '-' THEN '-' ELSE '' END, p.whole || p.fraction, point)
        )[1]
    )[1]
    ELSE error('amount')
END;
