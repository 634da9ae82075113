-- lake_batch's first and last day, as variables the views read as constants.
SET VARIABLE lake_low = (SELECT min(day) FROM lake_batch);
SET VARIABLE lake_high = (SELECT max(day) FROM lake_batch);
