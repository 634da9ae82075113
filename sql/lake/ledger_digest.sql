-- A digest of what the lake's three small tables would hold now (their temp views, sql/lake/rebate_windows.sql and
-- the two beside it): a publish records it, and the next one rewrites those files only when it changed. Small tables,
-- so this reads little; each row is taken whole, as text.
SELECT md5(coalesce(string_agg(line, chr(10) ORDER BY line), '')) AS digest
FROM (
    SELECT 'rebate_windows ' || CAST(w AS VARCHAR) AS line FROM lake_rebate_windows AS w
    UNION ALL
    SELECT 'rebate_loads ' || CAST(l AS VARCHAR) FROM lake_rebate_loads AS l
    UNION ALL
    SELECT 'rebate_files ' || CAST(f AS VARCHAR) FROM lake_rebate_files AS f
);
