-- Refresh: how many rows of rebate_details a pending ordId range holds, to cut it into slices of bounded size.
SELECT count(*)
FROM rebate_details
WHERE ord_id BETWEEN $first_ord_id AND $last_ord_id;
