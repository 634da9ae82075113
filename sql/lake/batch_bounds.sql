-- lake_batch's first and last day, as variables the views read as constants.
SET VARIABLE lake_low = (SELECT min(day) FROM lake_batch);
SET VARIABLE lake_high = (SELECT max(day) FROM lake_batch);
-- The ordIds of the batch's rows in rebate_details: the orders of one row in these days are among them.
SET VARIABLE lake_low_ord = (
    SELECT min(ord_id) FROM rebate_details WHERE trade_date BETWEEN getvariable('lake_low') AND getvariable('lake_high')
);
SET VARIABLE lake_high_ord = (
    SELECT max(ord_id) FROM rebate_details WHERE trade_date BETWEEN getvariable('lake_low') AND getvariable('lake_high')
);
