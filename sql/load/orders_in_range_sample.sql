-- Refresh: a sample of the ordIds in a pending range, whose quantiles cut it into slices of about equal rows. The
-- cuts need only be roughly even: any cut between ordIds is exact (every row of an order shares its ordId).
SELECT ord_id
FROM rebate_details
WHERE ord_id BETWEEN $first_ord_id AND $last_ord_id
USING SAMPLE reservoir(10000 ROWS) REPEATABLE (12);
